//! The IMAP side of a mailbox session: connect and log in, open the folder, then wait for
//! new mail in IDLE (or until the next poll), keeping track of every announcement of new
//! mail, wherever the server puts it.
//!
//! Servers announce new mail as an untagged `* N EXISTS` (or `* N RECENT`) on whatever
//! command is running when it arrives: inside IDLE, but also on the completion of a SEARCH,
//! FETCH, STORE or NOOP, or just before IDLE's `+` continuation (GreenMail). Dovecot sends
//! that announcement once: a client that ignores it on a FETCH completion hears nothing
//! more when it then IDLEs. So every announcement seen outside IDLE is noted here
//! ([`OpenFolder::note_unsolicited`]) and owes an immediate catch-up instead of an IDLE.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use tracing::{debug, info, warn};

use super::worker::{MailboxWorker, Wake};
use super::{Credential, ImapError, Session, connect, timed};
use crate::config::PostProcess;

/// A session with the configured folder open, and what the server said about it.
pub(super) struct OpenFolder {
    pub(super) imap: Session,
    pub(super) uidvalidity: u32,
    pub(super) can_move: bool,
    pub(super) uidplus: bool,
    idle: bool,
    news: Announcements,
}

/// What the server announced about the folder's size outside IDLE.
///
/// Every EXISTS (and every RECENT that changed) owes a catch-up, with one exception that
/// keeps a server which repeats itself from looping us: an EXISTS that repeats the count a
/// catch-up found nothing new at. Counts are not tracked further (an EXPUNGE inside
/// UID EXPUNGE or IDLE would make them drift): a redundant catch-up costs one SEARCH, a
/// missed one a reply left waiting until the poll.
#[derive(Debug, Default)]
struct Announcements {
    /// The last message count the server told (EXAMINE, EXISTS); `None` once an EXPUNGE
    /// made it stale.
    heard: Option<u32>,
    /// The count at the last catch-up that found nothing new.
    settled: Option<u32>,
    recent: u32,
    /// New mail was announced and no catch-up has looked for it yet.
    owed: bool,
}

impl Announcements {
    fn note(&mut self, r: UnsolicitedResponse) {
        match r {
            UnsolicitedResponse::Exists(n) => {
                if self.settled != Some(n) {
                    debug!(exists = n, "EXISTS announced outside IDLE");
                    self.owed = true;
                }
                self.heard = Some(n);
            }
            UnsolicitedResponse::Recent(n) => {
                if n > 0 && n != self.recent {
                    debug!(recent = n, "RECENT announced outside IDLE");
                    self.owed = true;
                }
                self.recent = n;
            }
            UnsolicitedResponse::Expunge(_) => (self.heard, self.settled) = (None, None),
            _ => {}
        }
    }
}

impl OpenFolder {
    /// Reads the untagged responses the server sent on the side of the last commands.
    pub(super) fn note_unsolicited(&mut self) {
        while let Ok(r) = self.imap.unsolicited_responses.try_recv() {
            self.news.note(r);
        }
    }

    /// A catch-up found nothing new: a repeat of the count last heard is no news.
    pub(super) fn settled(&mut self) {
        self.note_unsolicited();
        self.news.settled = self.news.heard;
    }

    /// Whether an announcement seen outside IDLE still waits for a catch-up; the caller
    /// is about to do that catch-up.
    fn take_owed(&mut self) -> bool {
        self.note_unsolicited();
        std::mem::take(&mut self.news.owed)
    }

    /// Says goodbye, but never waits long for it.
    pub(super) async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.imap.logout()).await;
    }
}

impl MailboxWorker {
    /// Connects and logs in: with the password, or with an OAuth2 access token. A token
    /// the server refuses (revoked early, or expired in a clock's disagreement) is
    /// refreshed once and tried again; a second refusal is the session's error.
    async fn login(&self) -> Result<super::Session, ImapError> {
        let Some(tokens) = &self.tokens else {
            let credential = Credential::Password(self.settings.password_in(&self.section)?);
            return connect(&self.settings, &credential).await;
        };
        let method = self.settings.auth;
        let token = tokens.access_token().await?;
        match connect(&self.settings, &Credential::Bearer { method, token }).await {
            Err(ImapError::Auth { message, .. }) => {
                warn!(%message, "the server refused the access token; refreshing it once");
                let token = tokens.refreshed().await?;
                connect(&self.settings, &Credential::Bearer { method, token }).await
            }
            other => other,
        }
    }

    /// Connects, logs in (which clears the last error: the server takes us again) and
    /// opens the folder: read-only unless post-processing has to change it. `None` on
    /// shutdown.
    pub(super) async fn open(&self) -> Result<Option<OpenFolder>, ImapError> {
        // connect + TLS + greeting + login, each bounded by the timeout, and with OAuth2
        // up to two token requests (30 s each at most)
        let token_budget =
            if self.tokens.is_some() { Duration::from_secs(60) } else { Duration::ZERO };
        self.promise(self.settings.timeout * 4 + token_budget);
        let mut imap = tokio::select! {
            s = self.login() => s?,
            _ = self.shutdown.cancelled() => return Ok(None),
        };
        self.update(|h| {
            h.last_error = None;
            h.reauthorize = false;
        });
        let limit = self.settings.timeout;
        self.promise(limit * 3);
        let mailbox = if self.settings.post_process == PostProcess::None {
            timed(limit, "EXAMINE", imap.examine(&self.settings.folder)).await?
        } else {
            timed(limit, "SELECT", imap.select(&self.settings.folder)).await?
        };
        let uidvalidity = mailbox.uid_validity.ok_or(ImapError::NoUidValidity)?;
        info!(folder = %self.settings.folder, uidvalidity, exists = mailbox.exists, "connected");
        self.update(|h| {
            h.connected = true;
            h.uidvalidity = Some(uidvalidity);
        });
        let caps = timed(limit, "CAPABILITY", imap.capabilities()).await?;
        let idle = self.settings.idle && caps.has_str("IDLE");
        let (can_move, uidplus) = (caps.has_str("MOVE"), caps.has_str("UIDPLUS"));
        drop(caps);
        let news = Announcements {
            heard: Some(mailbox.exists),
            settled: None,
            recent: mailbox.recent,
            owed: false,
        };
        let mut open = OpenFolder { imap, uidvalidity, can_move, uidplus, idle, news };
        // The catch-up that follows looks for everything anyway.
        open.take_owed();
        Ok(Some(open))
    }

    /// Waits for new mail: in IDLE when the server offers it, else until the next poll.
    /// Returns at once when mail was announced outside IDLE since the last catch-up.
    pub(super) async fn wait_for_mail(
        &self,
        mut folder: OpenFolder,
    ) -> Result<(OpenFolder, Wake), ImapError> {
        if folder.take_owed() {
            debug!("new mail announced outside IDLE: catching up again");
            return Ok((folder, Wake::Announced));
        }
        if folder.idle {
            self.idle(folder).await
        } else {
            let wake = self.sleep_then_noop(&mut folder).await?;
            Ok((folder, wake))
        }
    }

    /// RFC 2177: wait for EXISTS; re-issue at least every poll_interval (capped at 29
    /// minutes), which is also the safety-net poll.
    async fn idle(&self, mut folder: OpenFolder) -> Result<(OpenFolder, Wake), ImapError> {
        let limit = self.settings.timeout;
        // What arrives before IDLE's `+` continuation lands in this channel.
        let side = folder.imap.unsolicited_responses.clone();
        let mut handle = folder.imap.idle();
        timed(limit, "IDLE", handle.init()).await?;
        while let Ok(r) = side.try_recv() {
            folder.news.note(r);
        }
        let wait = self.settings.poll_interval.min(Duration::from_secs(29 * 60));
        self.promise(wait + limit * 2);
        let woken = if std::mem::take(&mut folder.news.owed) {
            // GreenMail announces new mail just before the continuation, and not again.
            debug!("new mail announced before IDLE's continuation: leaving IDLE");
            Some(IdleResponse::ManualInterrupt)
        } else {
            // async-imap's own timeout restarts at every server line, and servers send
            // keepalives ("* OK Still here": Dovecot every 2 minutes), so the poll deadline
            // is kept here.
            let (woken, _interrupt) = handle.wait();
            tokio::select! {
                r = woken => {
                    Some(r.map_err(|source| ImapError::Protocol { op: "IDLE", source })?)
                }
                _ = tokio::time::sleep(wait) => Some(IdleResponse::Timeout),
                _ = self.shutdown.cancelled() => None,
            }
        };
        folder.imap = timed(limit, "IDLE DONE", handle.done()).await?;
        if let Some(IdleResponse::NewData(data)) = &woken {
            match data.parsed() {
                Response::MailboxData(MailboxDatum::Exists(n)) => folder.news.heard = Some(*n),
                Response::Expunge(_) => (folder.news.heard, folder.news.settled) = (None, None),
                _ => {}
            }
        }
        // Whatever the server said, the catch-up that follows looks for it.
        folder.take_owed();
        let wake = match woken {
            None => Wake::Stop,
            Some(IdleResponse::Timeout) => {
                debug!("IDLE reached poll_interval: polling");
                self.noop(&mut folder).await?;
                Wake::Poll
            }
            Some(_) => Wake::Announced,
        };
        Ok((folder, wake))
    }

    /// Without IDLE: sleep until the next poll.
    async fn sleep_then_noop(&self, folder: &mut OpenFolder) -> Result<Wake, ImapError> {
        self.promise(self.settings.poll_interval + self.settings.timeout);
        tokio::select! {
            _ = self.shutdown.cancelled() => return Ok(Wake::Stop),
            _ = tokio::time::sleep(self.settings.poll_interval) => {}
        }
        self.noop(folder).await?;
        Ok(Wake::Poll)
    }

    /// A poll, not a notification: servers (Dovecot among them) bring a session up to date
    /// only when a command ends, so without this NOOP the search would miss what arrived
    /// since the server last looked, until the next poll.
    async fn noop(&self, folder: &mut OpenFolder) -> Result<(), ImapError> {
        timed(self.settings.timeout, "NOOP", folder.imap.noop()).await?;
        folder.take_owed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_count_owes_a_catch_up_and_a_settled_repeat_does_not() {
        let mut news = Announcements { heard: Some(3), ..Default::default() };
        news.note(UnsolicitedResponse::Exists(3));
        assert!(std::mem::take(&mut news.owed), "nothing settled yet: look");
        news.settled = news.heard;
        news.note(UnsolicitedResponse::Exists(3));
        assert!(!news.owed, "a server repeating itself does not loop us");
        news.note(UnsolicitedResponse::Exists(4));
        assert!(std::mem::take(&mut news.owed));
        news.settled = Some(4);
        // One expunged, one arrived: the same count, yet new mail.
        news.note(UnsolicitedResponse::Expunge(1));
        news.note(UnsolicitedResponse::Exists(4));
        assert!(news.owed);
    }

    #[test]
    fn a_changed_recent_owes_a_catch_up() {
        let mut news = Announcements::default();
        news.note(UnsolicitedResponse::Recent(0));
        assert!(!news.owed);
        news.note(UnsolicitedResponse::Recent(2));
        assert!(news.owed);
    }
}
