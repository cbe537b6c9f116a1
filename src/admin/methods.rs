//! What each admin method does. Parameters are typed; a bad one is reported with its name.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::info;

use super::import::Connection;
use super::protocol::*;
use crate::collab::{CollabStatus, Terms};
use crate::config::{ConfigError, MailboxSettings};
use crate::imap::{MailboxHealth, Registry};
use crate::mail::normalize_input_address;
use crate::smtp::{OutreachError, PickError, SharedMailers};
use crate::store::campaigns::Campaign;
use crate::store::collabs::{CollabError, CollabFilter};
use crate::store::creators::{Creator, NewCreator};
use crate::store::mailboxes::{PasswordLogin, StoredMailbox};
use crate::store::outreach::NewOutreach;
use crate::store::tokens::SealedToken;
use crate::store::{Page, Store, channels};

/// Everything the admin methods need from the running daemon.
pub struct AdminContext {
    pub store: Store,
    pub mailboxes: Registry,
    /// The SMTP identities: `[smtp]` and each running mailbox's own, kept current by the
    /// daemon.
    pub mailers: SharedMailers,
    /// OAuth2 logins, for `mailbox.authorize`.
    pub logins: std::sync::Arc<crate::oauth::Logins>,
    /// The config file as loaded (kept current on reload): a database mailbox may not
    /// reuse its mailboxes' names, and needs its `[secrets] key_file` for OAuth2.
    pub file_config: FileConfig,
    pub started: Instant,
    /// This instance's id among those sharing the database (`crate::cluster`).
    pub instance: String,
}

/// The config file's settings, shared with the daemon.
pub type FileConfig = std::sync::Arc<std::sync::RwLock<crate::config::Settings>>;

type Outcome = Result<Value, ErrorBody>;

/// Parses one import row, naming the offending field like [`Call::parse`] does.
fn row<T: DeserializeOwned>(v: Value) -> Result<T, ErrorBody> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        invalid_params(&path, e.into_inner().to_string())
    })
}

/// Each row's line number and its parsed fields (or the error naming the field).
pub(super) fn import_rows<T: DeserializeOwned>(
    rows: Vec<Value>,
) -> Vec<(u64, Result<T, ErrorBody>)> {
    rows.into_iter()
        .map(|mut v| {
            let line = v.get("line").and_then(Value::as_u64).unwrap_or(0);
            if let Some(o) = v.as_object_mut() {
                o.remove("line");
            }
            (line, row(v))
        })
        .collect()
}

pub(super) fn internal(e: impl std::fmt::Display) -> ErrorBody {
    tracing::error!(error = %e, "admin request failed");
    ErrorBody::new(ErrorCode::Internal, e.to_string())
}

/// The answer of a call whose parameters are `P`: its result type is checked here.
fn answer<P: Params>(v: P::Output) -> Outcome {
    serde_json::to_value(v).map_err(internal)
}

/// Runs a list query for `p`: everything as an array when no paging is asked, else one
/// page (one row more is fetched to learn whether another page follows).
async fn paged<T, F>(
    p: PageParams,
    query: impl FnOnce(Page) -> F,
    id: impl Fn(&T) -> i64,
) -> Result<Listing<T>, ErrorBody>
where
    F: std::future::Future<Output = Result<Vec<T>, crate::store::StoreError>>,
{
    if !p.is_paged() {
        return Ok(Listing::All(query(Page::default()).await.map_err(internal)?));
    }
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(invalid("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let page = Page { after: p.after, limit: Some(i64::from(limit) + 1) };
    let mut items = query(page).await.map_err(internal)?;
    let next_after = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(&id)
    } else {
        None
    };
    Ok(Listing::Page { items, next_after })
}

fn not_found(field: &str, what: &str) -> ErrorBody {
    ErrorBody::field(ErrorCode::NotFound, field, format!("no {field} {what:?}"))
}

fn invalid(field: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody::field(ErrorCode::InvalidParams, field, message)
}

impl AdminContext {
    /// Runs one request as `actor` (the caller's user, recorded on every event).
    /// `conn` is the state of the caller's connection (an import in progress).
    pub async fn dispatch(&self, req: Request, actor: &str, conn: &mut Connection) -> Outcome {
        conn.check(&req.method)?;
        let call = Call::parse(&req.method, req.params).inspect_err(|_| {
            // A chunk that does not parse ends its import: nothing of it is written.
            conn.import = None;
        })?;
        if call.is_mutating() {
            info!(actor, method = %req.method, "admin change requested");
        }
        match call {
            Call::Status(_) => answer::<StatusParams>(self.status().await),
            Call::CampaignCreate(p) => {
                answer::<CampaignCreate>(self.campaign_create(p).await?.into())
            }
            Call::CampaignList(_) => answer::<CampaignList>(
                self.store
                    .list_campaigns()
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ),
            Call::CampaignArchive(p) => {
                let c = self.campaign(&p.campaign).await?;
                // None only if the campaign went away since it was found.
                let archived = self.store.archive_campaign(c.id).await.map_err(internal)?;
                answer::<CampaignArchive>(
                    archived.ok_or_else(|| not_found("campaign", &p.campaign))?.into(),
                )
            }
            Call::CampaignBind(p) => {
                let bound = self.campaign_bind(p).await?;
                // Unbinding may explain waiting mail; the report is logged.
                self.rematch_after_change().await;
                answer::<CampaignBind>(bound.into())
            }
            Call::CreatorAdd(p) => {
                let creator = self.creator_add(p).await?;
                // The new creator's addresses may explain waiting mail; its report is logged.
                self.rematch_after_change().await;
                answer::<CreatorFields>(creator.into())
            }
            Call::CreatorList(p) => {
                let search = p.search.as_deref();
                answer::<CreatorList>(
                    paged(p.page(), |page| self.store.list_creators(search, page), |c| c.id)
                        .await?
                        .map(Into::into),
                )
            }
            Call::CreatorShow(p) => answer::<CreatorShow>(self.creator(&p.creator).await?.into()),
            call @ (Call::CreatorImport(_) | Call::OutreachImport(_)) => {
                self.import_chunk(conn, call).await
            }
            Call::OutreachRecord(row) => {
                let new = self.outreach_rows(vec![Ok(row)]).await?.remove(0)?;
                let added = self.store.record_outreach(&[new]).await.map_err(internal)?;
                let rematched = Some(self.rematch_after_change().await);
                answer::<OutreachFields>(RecordReport {
                    recorded: added,
                    skipped: 1 - added,
                    rematched,
                })
            }
            Call::OutreachSend(p) => answer::<OutreachSend>(self.outreach_send(p, actor).await?),
            Call::CollabCreate(p) => answer::<CollabCreate>(self.collab_create(p, actor).await?),
            Call::CollabList(f) => {
                let page = f.page();
                let filter = CollabFilter {
                    campaign_id: match f.campaign {
                        Some(c) => Some(self.campaign(&c).await?.id),
                        None => None,
                    },
                    creator_id: match f.creator {
                        Some(c) => Some(self.creator(&c).await?.id),
                        None => None,
                    },
                    status: f.status,
                    since: f.since,
                };
                let list =
                    paged(page, |page| self.store.list_collaborations(&filter, page), |c| c.id);
                answer::<CollabList>(list.await?.try_map(TryInto::try_into).map_err(internal)?)
            }
            Call::CollabShow(p) => answer::<CollabShow>(self.collab_show(p.id).await?),
            Call::CollabUpdate(u) => {
                let terms = validate_terms(u.terms)?;
                self.store
                    .update_terms(u.id, &terms, actor, u.reason.as_deref())
                    .await
                    .map_err(collab_error)?;
                answer::<CollabUpdate>(self.collab_show(u.id).await?)
            }
            Call::CollabAdvance(a) => {
                let to = a.to;
                if to == CollabStatus::Cancelled {
                    return Err(invalid("to", "use collab.cancel (a reason is required)"));
                }
                answer::<CollabAdvance>(
                    self.transition(a.id, to, actor, a.reason.as_deref()).await?,
                )
            }
            Call::CollabCancel(c) => {
                if c.reason.trim().is_empty() {
                    return Err(invalid("reason", "a reason is required"));
                }
                answer::<CollabCancel>(
                    self.transition(c.id, CollabStatus::Cancelled, actor, Some(&c.reason)).await?,
                )
            }
            Call::InboxUnmatched(p) => answer::<InboxUnmatched>(
                paged(p.page(), |page| self.store.unmatched(page), |m| m.id).await?.map(Into::into),
            ),
            Call::InboxAssign(a) => {
                let creator = self.creator(&a.creator).await?;
                let campaign = self.campaign(&a.campaign).await?;
                let collab = self
                    .store
                    .assign_unmatched(a.message, creator.id, campaign.id, actor)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| not_found("message", &format!("{} (unmatched)", a.message)))?;
                answer::<InboxAssign>(self.collab_show(collab.id).await?)
            }
            // The connection itself streams a watch (see `server::watch`).
            Call::Watch(_) => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "watch is served by the connection, not as one answer",
            )),
            Call::InboxRematch(p) => {
                let report =
                    crate::ingest::rematch(&self.store, p.since).await.map_err(internal)?;
                answer::<InboxRematch>(report.into())
            }
            Call::InboxUndecline(u) => {
                if u.reason.trim().is_empty() {
                    return Err(invalid("reason", "must not be empty"));
                }
                let collab = self
                    .store
                    .undecline(u.message, actor, u.reason.trim())
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| {
                        not_found(
                            "message",
                            &format!("{} (a matched decline or complaint)", u.message),
                        )
                    })?;
                answer::<InboxUndecline>(self.collab_show(collab.id).await?)
            }
            Call::MailboxAuthorize(p) => answer::<MailboxAuthorize>(self.authorize(p).await?),
            Call::MailboxAuthorizeFinish(f) => {
                let (key, source) =
                    self.login(&MailboxAuthorizeStatus { mailbox: f.mailbox, smtp: f.smtp })?;
                let start = self.logins.take_code(&key).ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        "no code flow in progress for this login: start it again",
                    )
                })?;
                let result = source.finish_code(start, &f.code, &f.state).await;
                self.authorize_result(&key, result)?;
                answer::<MailboxAuthorizeFinish>(AuthorizeState::Authorized)
            }
            Call::MailboxAuthorizeStatus(login) => {
                let (key, _) = self.login(&login)?;
                let state = self.logins.state(&key).ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        "no authorization was started for this login",
                    )
                })?;
                answer::<MailboxAuthorizeStatus>(state.into())
            }
            Call::MailboxAdd(t) => {
                answer::<MailboxTable>(self.mailbox_add(mailbox_settings(t)?).await?)
            }
            Call::MailboxList(_) => answer::<MailboxList>(self.mailbox_list().await?),
            Call::MailboxShow(p) => answer::<MailboxShow>(self.mailbox_show(&p.mailbox).await?),
            Call::MailboxPause(p) => {
                answer::<MailboxPause>(self.mailbox_change(&p.mailbox, Some(true)).await?)
            }
            Call::MailboxResume(p) => {
                answer::<MailboxResume>(self.mailbox_change(&p.mailbox, Some(false)).await?)
            }
            Call::MailboxRemove(p) => {
                answer::<MailboxRemove>(self.mailbox_change(&p.mailbox, None).await?)
            }
        }
    }

    /// The file's mailbox of that name, with its index there.
    fn file_mailbox(&self, name: &str) -> Option<(usize, MailboxSettings)> {
        let file = self.file_config.read().expect("file config lock");
        file.mailboxes.iter().enumerate().find(|(_, m)| m.name == name).map(|(i, m)| (i, m.clone()))
    }

    /// Checks a runtime mailbox against `crate::confine`'s rules (before anything it names
    /// is read), validates it like a file entry, seals its passwords and stores it; the
    /// running daemon picks it up through the `collabd_mailboxes` notification.
    async fn mailbox_add(&self, mb: MailboxSettings) -> Result<MailboxEntry, ErrorBody> {
        let (admin, key_file) = {
            let file = self.file_config.read().expect("file config lock");
            (file.admin.clone(), file.secrets.key_file.clone())
        };
        let confined = crate::confine::confine_mailbox(&mb, &admin)
            .map_err(|e| mailbox_error(ErrorCode::Forbidden, e))?;
        crate::config::validate_mailbox(0, &confined)
            .map_err(|e| mailbox_error(ErrorCode::InvalidParams, e))?;
        if let Some((i, _)) = self.file_mailbox(&mb.name) {
            return Err(name_clash(&mb.name, i));
        }
        if mb.uses_oauth() && key_file.is_none() {
            return Err(invalid(
                "auth",
                "OAuth2 needs [secrets] key_file in the config file (it encrypts the stored \
                 refresh tokens)",
            ));
        }
        let passwords = seal_passwords(&mb, key_file.as_deref())?;
        // The passwords live sealed in their own table, never in the settings JSON.
        let mut stored = mb.clone();
        stored.password = None;
        if let Some(s) = &mut stored.smtp {
            s.password = None;
        }
        let json = serde_json::to_value(&stored).map_err(internal)?;
        let row = self.store.insert_mailbox(&mb.name, &json, &passwords).await.map_err(internal)?;
        let row = row.ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::Conflict,
                "name",
                format!("a database mailbox named {:?} exists already", mb.name),
            )
        })?;
        let logins = passwords.iter().map(|(l, _)| l.as_str().to_owned()).collect();
        stored_entry(row, logins)
    }

    /// Which logins of each database mailbox have a stored (sealed) password.
    async fn password_logins(&self) -> Result<HashMap<String, Vec<String>>, ErrorBody> {
        let mut logins: HashMap<String, Vec<String>> = HashMap::new();
        for p in self.store.mailbox_passwords().await.map_err(internal)? {
            logins.entry(p.mailbox).or_default().push(p.login.as_str().to_owned());
        }
        Ok(logins)
    }

    async fn mailbox_list(&self) -> Result<Vec<MailboxEntry>, ErrorBody> {
        let file = self.file_config.read().expect("file config lock").mailboxes.clone();
        let mut all: Vec<MailboxEntry> =
            file.into_iter().map(file_entry).collect::<Result<_, _>>()?;
        let mut logins = self.password_logins().await?;
        for row in self.store.stored_mailboxes().await.map_err(internal)? {
            let stored = logins.remove(&row.name).unwrap_or_default();
            all.push(stored_entry(row, stored)?);
        }
        Ok(all)
    }

    async fn mailbox_show(&self, name: &str) -> Result<MailboxEntry, ErrorBody> {
        if let Some((_, m)) = self.file_mailbox(name) {
            return file_entry(m);
        }
        let row = self.store.stored_mailbox(name).await.map_err(internal)?;
        let stored = self.password_logins().await?.remove(name).unwrap_or_default();
        stored_entry(row.ok_or_else(|| not_found("mailbox", name))?, stored)
    }

    /// Pauses (`Some(true)`), resumes (`Some(false)`) or removes (`None`) a database
    /// mailbox; the file's are changed in the file.
    async fn mailbox_change(
        &self,
        name: &str,
        paused: Option<bool>,
    ) -> Result<MailboxEntry, ErrorBody> {
        if let Some((i, _)) = self.file_mailbox(name) {
            return Err(ErrorBody::field(
                ErrorCode::Conflict,
                "mailbox",
                format!(
                    "mailbox {name:?} is defined in the config file (mailboxes[{i}]): change it \
                     there and reload (SIGHUP)"
                ),
            ));
        }
        // Read first: a removed mailbox's passwords go with it.
        let stored = self.password_logins().await?.remove(name).unwrap_or_default();
        let row = match paused {
            Some(p) => self.store.set_mailbox_paused(name, p).await,
            None => self.store.delete_mailbox(name).await,
        };
        stored_entry(row.map_err(internal)?.ok_or_else(|| not_found("mailbox", name))?, stored)
    }

    async fn campaign_create(&self, p: CampaignCreate) -> Result<Campaign, ErrorBody> {
        let name = p.name.trim();
        if name.is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.check_mailboxes(&p.mailboxes).await?;
        self.store.create_campaign(name, &p.mailboxes).await.map_err(internal)?.ok_or_else(|| {
            ErrorBody::field(ErrorCode::Conflict, "name", format!("campaign {name:?} exists"))
        })
    }

    async fn campaign_bind(&self, p: CampaignBind) -> Result<Campaign, ErrorBody> {
        let c = self.campaign(&p.campaign).await?;
        self.check_mailboxes(&p.mailboxes).await?;
        let bound = self.store.bind_campaign(c.id, &p.mailboxes).await.map_err(internal)?;
        bound.ok_or_else(|| not_found("campaign", &p.campaign))
    }

    /// A binding names only mailboxes that exist (the file's or the database's).
    async fn check_mailboxes(&self, mailboxes: &[String]) -> Result<(), ErrorBody> {
        let known = self.known_mailboxes().await?;
        match mailboxes.iter().enumerate().find(|(_, m)| !known.contains(*m)) {
            Some((i, m)) => Err(ErrorBody::field(
                ErrorCode::NotFound,
                format!("mailboxes[{i}]"),
                format!("no mailbox {m:?} (see `collabctl mailbox list`)"),
            )),
            None => Ok(()),
        }
    }

    /// The names of every mailbox, the file's and the database's (paused ones too).
    async fn known_mailboxes(&self) -> Result<HashSet<String>, ErrorBody> {
        let mut names: HashSet<String> = {
            let file = self.file_config.read().expect("file config lock");
            file.mailboxes.iter().map(|m| m.name.clone()).collect()
        };
        names.extend(
            self.store.stored_mailboxes().await.map_err(internal)?.into_iter().map(|r| r.name),
        );
        Ok(names)
    }

    /// After a change that adds creators or outreach: unmatched messages they now explain
    /// are matched (`ingest::rematch`). The change is committed already, so a failed
    /// re-match is reported (and logged), not an error: `inbox.rematch` retries it.
    pub(super) async fn rematch_after_change(&self) -> Rematched {
        match crate::ingest::rematch(&self.store, None).await {
            Ok(r) => {
                if r.matched > 0 {
                    info!(
                        matched = r.matched,
                        created = r.collaborations_created,
                        "unmatched messages rematched after a change to the pool or outreach"
                    );
                }
                Rematched::Done(r.into())
            }
            Err(e) => {
                tracing::warn!(error = %e, "rematch after import failed; run inbox.rematch");
                Rematched::Failed { error: e.to_string() }
            }
        }
    }

    /// The token source of a login named by `mailbox` or `smtp`.
    fn login(
        &self,
        p: &MailboxAuthorizeStatus,
    ) -> Result<(String, std::sync::Arc<crate::oauth::TokenSource>), ErrorBody> {
        let key = match (&p.mailbox, p.smtp) {
            (Some(name), false) => crate::oauth::Logins::mailbox_key(name),
            // A mailbox's own SMTP login (`[mailboxes.smtp]`).
            (Some(name), true) => crate::oauth::Logins::mailbox_smtp_key(name),
            (None, true) => crate::oauth::Logins::SMTP_KEY.to_owned(),
            (None, false) => {
                return Err(ErrorBody::field(
                    ErrorCode::InvalidParams,
                    "mailbox",
                    "name a mailbox, set smtp, or both (a mailbox's own SMTP login)",
                ));
            }
        };
        let source = self.logins.get(&key).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::NotFound,
                "mailbox",
                format!("{key:?} is not configured with auth = \"xoauth2\" or \"oauthbearer\""),
            )
        })?;
        Ok((key, source))
    }

    /// Records how an authorization ended, as the admin answer and for the status call.
    fn authorize_result(
        &self,
        key: &str,
        result: Result<(), crate::oauth::OAuthError>,
    ) -> Result<(), ErrorBody> {
        use crate::oauth::AuthorizeState;
        match result {
            Ok(()) => {
                self.logins.set_state(key, AuthorizeState::Authorized);
                Ok(())
            }
            Err(e) => {
                self.logins.set_state(key, AuthorizeState::Failed { error: e.to_string() });
                Err(ErrorBody::new(ErrorCode::Oauth, e.to_string()))
            }
        }
    }

    /// Starts the device flow (polled to its end in the background) or the code flow.
    async fn authorize(&self, p: MailboxAuthorize) -> Result<AuthorizeStart, ErrorBody> {
        use crate::oauth::AuthorizeState;
        let (key, source) =
            self.login(&MailboxAuthorizeStatus { mailbox: p.mailbox, smtp: p.smtp })?;
        let device = match p.flow {
            Flow::Device => true,
            Flow::Code => false,
            Flow::Auto => source.has_device_flow(),
        };
        if device {
            let (start, pending) = source
                .start_device()
                .await
                .map_err(|e| ErrorBody::new(ErrorCode::Oauth, e.to_string()))?;
            self.logins.set_state(&key, AuthorizeState::Pending);
            let logins = self.logins.clone();
            tokio::spawn(async move {
                let state = match source.finish_device(pending).await {
                    Ok(()) => AuthorizeState::Authorized,
                    Err(e) => {
                        tracing::warn!(login = %key, error = %e, "device authorization failed");
                        AuthorizeState::Failed { error: e.to_string() }
                    }
                };
                logins.set_state(&key, state);
            });
            return Ok(AuthorizeStart::Device(start.into()));
        }
        let redirect = p.redirect_uri.ok_or_else(|| {
            ErrorBody::field(ErrorCode::InvalidParams, "redirect_uri", "required by the code flow")
        })?;
        let start = source
            .start_code(&redirect)
            .map_err(|e| ErrorBody::new(ErrorCode::Oauth, e.to_string()))?;
        let url = start.authorize_url.clone();
        self.logins.hold_code(&key, start);
        self.logins.set_state(&key, AuthorizeState::Pending);
        Ok(AuthorizeStart::Code { authorize_url: url })
    }

    /// Live figures from the workers; the committed ones (`processed`, `highest_uid`,
    /// `last_commit`) from `mailbox_sync`, so a reload or restart does not reset them. With
    /// the database unreachable, the workers' own view stands in.
    /// The event `watch` sends for a notification on `channel` about row `id`; `None` when
    /// the row is gone (a collaboration deleted, a message matched since).
    pub async fn watch_event(&self, channel: &str, id: i64) -> Option<WatchEvent> {
        let found = match channel {
            channels::COLLABORATIONS => match self.store.collaboration(id).await {
                Ok(Some(c)) => match Collaboration::try_from(c) {
                    Ok(c) => Ok(Some(WatchEvent::Collaboration(Box::new(c)))),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch: cannot show the collaboration");
                        Ok(None)
                    }
                },
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            _ => self
                .store
                .unmatched_message(id)
                .await
                .map(|m| m.map(|m| WatchEvent::Unmatched(m.into()))),
        };
        found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, channel, id, "watch: cannot load the row");
            None
        })
    }

    /// Every mailbox this instance knows (the figures of those another instance works
    /// come from the committed state), the paused ones, and the instances sharing the
    /// database with the mailbox count each holds.
    async fn status(&self) -> StatusResult {
        let committed = self.store.sync_summaries().await.ok();
        let leases = self.store.live_leases().await.ok();
        let instances = self.store.instances().await.ok();
        let holder = |name: &str| {
            leases.as_ref()?.iter().find(|l| l.mailbox == name).map(|l| l.instance_id.clone())
        };
        let known: Vec<(String, Option<MailboxHealth>)> = self
            .mailboxes
            .read()
            .expect("registry lock")
            .iter()
            .map(|(name, h)| (name.clone(), h.as_ref().map(|h| h.lock().expect("health").clone())))
            .collect();
        let mut mailboxes: Vec<MailboxStatus> = known
            .into_iter()
            .map(|(name, health)| {
                let holder = holder(&name);
                mailbox_status(name, health, committed.as_deref(), holder, false)
            })
            .collect();
        if let Ok(stored) = self.store.stored_mailboxes().await {
            for row in stored.into_iter().filter(|r| r.paused) {
                mailboxes.push(mailbox_status(row.name, None, committed.as_deref(), None, true));
            }
        }
        StatusResult {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            database: committed.is_some(),
            instance: Some(self.instance.clone()),
            instances: instances
                .unwrap_or_default()
                .into_iter()
                .map(|i| InstanceStatus {
                    id: i.id,
                    host: i.host,
                    pid: i.pid,
                    started_at: i.started_at,
                    heartbeat_age_ms: i.heartbeat_age_ms,
                    mailboxes: u64::try_from(i.mailboxes).unwrap_or(0),
                })
                .collect(),
            mailboxes,
        }
    }

    async fn campaign(&self, key: &str) -> Result<Campaign, ErrorBody> {
        self.store
            .find_campaign(key)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("campaign", key))
    }

    async fn creator(&self, key: &str) -> Result<Creator, ErrorBody> {
        self.store
            .find_creator(key)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("creator", key))
    }

    async fn creator_add(&self, f: CreatorFields) -> Result<Creator, ErrorBody> {
        let new = new_creator(&f)
            .map_err(|(field, msg)| ErrorBody::field(ErrorCode::InvalidParams, field, msg))?;
        let key = format!("{}:{}", new.platform, new.handle);
        if let Some(existing) = self.store.find_creator(&key).await.map_err(internal)? {
            return Err(ErrorBody::field(
                ErrorCode::Conflict,
                "handle",
                format!("creator {key} exists with id {}", existing.id),
            ));
        }
        self.store.upsert_creators(&[new]).await.map_err(internal)?;
        self.creator(&key).await
    }

    /// Checks outreach rows and resolves their creators (all in one query) and campaigns
    /// (remembered across rows: they are nearly always the same few). `outreach.record`
    /// passes one row, an import a chunk.
    pub(super) async fn outreach_rows(
        &self,
        rows: Vec<Result<OutreachFields, ErrorBody>>,
    ) -> Result<Vec<Result<NewOutreach, ErrorBody>>, ErrorBody> {
        let keys: Vec<&str> =
            rows.iter().map(|r| r.as_ref().map_or("", |r| r.creator.as_str())).collect();
        let creator_ids = self.store.creator_ids(&keys).await.map_err(internal)?;
        let mut campaigns = HashMap::new();
        let known = match rows.iter().any(|r| r.as_ref().is_ok_and(|r| r.mailbox.is_some())) {
            true => self.known_mailboxes().await?,
            false => HashSet::new(),
        };
        let mut checked = Vec::with_capacity(rows.len());
        for (row, creator_id) in rows.into_iter().zip(creator_ids) {
            checked.push(match row {
                Ok(r) => self.outreach_row(&r, creator_id, &mut campaigns, &known).await,
                Err(e) => Err(e),
            });
        }
        Ok(checked)
    }

    async fn outreach_row(
        &self,
        r: &OutreachFields,
        creator_id: Option<i64>,
        campaigns: &mut HashMap<String, Campaign>,
        known_mailboxes: &HashSet<String>,
    ) -> Result<NewOutreach, ErrorBody> {
        let message_id = crate::mail::normalize_message_id(&r.message_id).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::InvalidParams,
                "message_id",
                "empty, or holds control characters",
            )
        })?;
        let to = normalize_input_address(&r.to).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::InvalidParams,
                "to",
                format!("{:?} is not an address", r.to),
            )
        })?;
        let creator_id = creator_id.ok_or_else(|| not_found("creator", &r.creator))?;
        let campaign = match campaigns.get(&r.campaign) {
            Some(c) => c,
            None => {
                let c = self.campaign(&r.campaign).await?;
                campaigns.entry(r.campaign.clone()).or_insert(c)
            }
        };
        let mailbox = r.mailbox.as_deref().map(str::trim).filter(|m| !m.is_empty());
        if let Some(m) = mailbox {
            if !known_mailboxes.contains(m) {
                return Err(not_found("mailbox", m));
            }
            check_binding(campaign, m)?;
        }
        Ok(NewOutreach {
            message_id,
            creator_id,
            campaign_id: campaign.id,
            to_address: to,
            subject: r.subject.clone(),
            sent_at: r.sent_at,
            status: "sent",
            reply_token: None,
            body: None,
            mailbox: mailbox.map(str::to_owned),
        })
    }

    async fn outreach_send(&self, p: OutreachSend, actor: &str) -> Result<SendResult, ErrorBody> {
        // Cloned out of the lock: it is not held while the message goes out.
        let mailer =
            self.mailers.read().expect("mailers lock").pick(p.mailbox.as_deref()).map_err(|e| {
                match e {
                    PickError::NotConfigured(_) => {
                        ErrorBody::new(ErrorCode::NotConfigured, e.to_string())
                    }
                    PickError::UnknownMailbox(_) => {
                        ErrorBody::field(ErrorCode::NotFound, "mailbox", e.to_string())
                    }
                    PickError::Broken(..) => {
                        ErrorBody::field(ErrorCode::Smtp, "mailbox", e.to_string())
                    }
                }
            })?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        if let Some(m) = &p.mailbox {
            check_binding(&campaign, m)?;
        }
        if self.store.is_unsubscribed(creator.id, campaign.id).await.map_err(internal)? {
            return Err(ErrorBody::field(
                ErrorCode::Unsubscribed,
                "creator",
                format!("{} opted out of {} (or of all outreach)", creator.handle, campaign.name),
            ));
        }
        let to = creator
            .emails
            .iter()
            .find(|e| e.role == "creator")
            .or(creator.emails.first())
            .ok_or_else(|| {
                ErrorBody::field(
                    ErrorCode::InvalidParams,
                    "creator",
                    "creator has no email address",
                )
            })?;
        let draft = mailer.draft(&to.address, &p.subject, &p.body).map_err(outreach_error)?;
        if p.dry_run {
            return Ok(SendResult {
                dry_run: true,
                message: Some(draft.preview()),
                message_id: draft.message_id,
                to: to.address.clone(),
                reply_to: draft.reply_to,
                from: mailer.from(),
                mailbox: p.mailbox,
                status: None,
            });
        }
        let row = NewOutreach {
            message_id: draft.message_id.clone(),
            creator_id: creator.id,
            campaign_id: campaign.id,
            to_address: to.address.clone(),
            subject: p.subject.clone(),
            sent_at: None,
            status: "queued",
            reply_token: Some(draft.token.clone()),
            body: Some(p.body.clone()),
            mailbox: p.mailbox.clone(),
        };
        // Recorded before sending, so a reply can never arrive for an unknown Message-ID.
        self.store.record_outreach(&[row]).await.map_err(internal)?;
        let sent = mailer.send(draft.message).await;
        self.store.finish_send(&draft.message_id, sent.is_ok()).await.map_err(internal)?;
        sent.map_err(outreach_error)?;
        info!(actor, message_id = %draft.message_id, to = %to.address,
            mailbox = p.mailbox.as_deref().unwrap_or("-"), "outreach sent");
        Ok(SendResult {
            dry_run: false,
            message_id: draft.message_id,
            to: to.address.clone(),
            reply_to: draft.reply_to,
            from: mailer.from(),
            mailbox: p.mailbox,
            status: Some("sent".to_owned()),
            message: None,
        })
    }

    async fn collab_create(&self, p: CollabCreate, actor: &str) -> Result<CollabDetail, ErrorBody> {
        let terms = validate_terms(p.terms)?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        let id = self
            .store
            .create_manual_collaboration(creator.id, campaign.id, &terms, p.allow_duplicate, actor)
            .await
            .map_err(collab_error)?;
        self.collab_show(id).await
    }

    async fn collab_show(&self, id: i64) -> Result<CollabDetail, ErrorBody> {
        let collab = self
            .store
            .collaboration(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("id", &id.to_string()))?;
        let events = self.store.events(id).await.map_err(internal)?;
        let messages = self.store.linked_messages(id).await.map_err(internal)?;
        Ok(CollabDetail {
            collab: collab.try_into().map_err(internal)?,
            events: events
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()
                .map_err(internal)?,
            messages: messages.into_iter().map(Into::into).collect(),
        })
    }

    async fn transition(
        &self,
        id: i64,
        to: CollabStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<CollabDetail, ErrorBody> {
        self.store.transition(id, to, actor, reason).await.map_err(collab_error)?;
        self.collab_show(id).await
    }
}

/// Outreach of a campaign bound to mailboxes must come from one of them: replies arriving
/// in any other mailbox could never match it.
fn check_binding(campaign: &Campaign, mailbox: &str) -> Result<(), ErrorBody> {
    if campaign.mailboxes.is_empty() || campaign.mailboxes.iter().any(|m| m == mailbox) {
        return Ok(());
    }
    Err(invalid(
        "mailbox",
        format!(
            "campaign {:?} is bound to mailbox(es) {}: replies in {mailbox:?} would never match it",
            campaign.name,
            campaign.mailboxes.join(", ")
        ),
    ))
}

/// The refusal of a database mailbox whose name the file uses: names both.
fn name_clash(name: &str, index: usize) -> ErrorBody {
    ErrorBody::field(
        ErrorCode::Conflict,
        "name",
        format!(
            "mailbox {name:?} is defined both in the config file (mailboxes[{index}]) and in \
             the database (mailbox add): names must be unique"
        ),
    )
}

/// A refused or invalid runtime mailbox as an error naming its key relative to the
/// request (`password_file`, `smtp.tls`).
fn mailbox_error(code: ErrorCode, e: ConfigError) -> ErrorBody {
    match e {
        ConfigError::Invalid { key, reason } => {
            let field = key.strip_prefix("mailboxes[0].").unwrap_or(&key).to_owned();
            ErrorBody::field(code, field.clone(), format!("{field}: {reason}"))
        }
        other => invalid(".", other.to_string()),
    }
}

/// The request's passwords (`password`, `smtp.password`) sealed with `[secrets] key_file`,
/// each bound to its mailbox and login; none configured is `not_configured`.
fn seal_passwords(
    mb: &MailboxSettings,
    key_file: Option<&std::path::Path>,
) -> Result<Vec<(PasswordLogin, SealedToken)>, ErrorBody> {
    let given = [
        (PasswordLogin::Imap, "password", mb.password.as_ref()),
        (PasswordLogin::Smtp, "smtp.password", mb.smtp.as_ref().and_then(|s| s.password.as_ref())),
    ];
    let given: Vec<_> = given.into_iter().filter_map(|(l, f, p)| Some((l, f, p?))).collect();
    let Some((_, field, _)) = given.first() else { return Ok(Vec::new()) };
    let Some(key_file) = key_file else {
        return Err(ErrorBody::field(
            ErrorCode::NotConfigured,
            *field,
            "a password sent with mailbox.add is stored encrypted with [secrets] key_file, \
             and the config file sets none (secrets.key_file: openssl rand -hex 32)",
        ));
    };
    let key = crate::oauth::SecretKey::load(key_file).map_err(internal)?;
    Ok(given
        .into_iter()
        .map(|(login, _, p)| (login, key.seal_bound(p.expose(), &login.context(&mb.name))))
        .collect())
}

/// A mailbox's entry: the summary the tables show and every setting as a table.
fn entry(m: &MailboxSettings, source: MailboxSource) -> Result<MailboxEntry, ErrorBody> {
    let Value::Object(table) = serde_json::to_value(m).map_err(internal)? else {
        return Err(internal("mailbox settings are not a table"));
    };
    let auth = serde_json::to_value(m.auth).map_err(internal)?;
    Ok(MailboxEntry {
        name: m.name.clone(),
        source,
        paused: false,
        host: m.host.clone(),
        port: m.effective_port(),
        username: m.username.clone(),
        folder: m.folder.clone(),
        auth: auth.as_str().unwrap_or_default().to_owned(),
        settings: MailboxTable(table),
        stored_passwords: Vec::new(),
        created_at: None,
        updated_at: None,
    })
}

fn file_entry(m: MailboxSettings) -> Result<MailboxEntry, ErrorBody> {
    entry(&m, MailboxSource::File)
}

fn stored_entry(
    row: StoredMailbox,
    stored_passwords: Vec<String>,
) -> Result<MailboxEntry, ErrorBody> {
    let mut settings: MailboxSettings = serde_json::from_value(row.settings).map_err(internal)?;
    // Never stored there; should a hand-written row carry one, it is not shown either.
    settings.password = None;
    if let Some(s) = &mut settings.smtp {
        s.password = None;
    }
    Ok(MailboxEntry {
        paused: row.paused,
        stored_passwords,
        created_at: Some(row.created_at),
        updated_at: Some(row.updated_at),
        ..entry(&settings, MailboxSource::Database)?
    })
}

/// `mailbox.add`'s table read by the config's rules, a bad key named by its path.
fn mailbox_settings(t: MailboxTable) -> Result<MailboxSettings, ErrorBody> {
    serde_path_to_error::deserialize(Value::Object(t.0)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path.is_empty() { ".".to_owned() } else { path };
        invalid_params(&path, e.into_inner().to_string())
    })
}

/// Checks terms and writes their amounts in minor units, as they are stored.
fn validate_terms(t: Terms) -> Result<Terms, ErrorBody> {
    t.validate().map_err(|e| {
        ErrorBody::field(ErrorCode::InvalidParams, format!("terms.{}", e.field), e.message)
    })?;
    Ok(t.in_minor_units())
}

fn collab_error(e: CollabError) -> ErrorBody {
    match e {
        CollabError::NotFound(id) => not_found("id", &id.to_string()),
        CollabError::Duplicate(existing) => ErrorBody {
            code: ErrorCode::Duplicate,
            message: format!(
                "an open collaboration for this creator and campaign exists: {existing} (use allow_duplicate to add another)"
            ),
            field: Some("creator".into()),
        },
        e @ CollabError::IllegalMove { .. } => {
            ErrorBody::field(ErrorCode::InvalidTransition, "to", e.to_string())
        }
        CollabError::Store(e) => internal(e),
    }
}

fn outreach_error(e: OutreachError) -> ErrorBody {
    match e {
        OutreachError::Address(m) => ErrorBody::field(ErrorCode::InvalidParams, "to", m),
        e => ErrorBody::new(ErrorCode::Smtp, e.to_string()),
    }
}

/// Validates and normalises a creator row (used by add and import alike).
pub(super) fn new_creator(f: &CreatorFields) -> Result<NewCreator, (&'static str, String)> {
    let (name, platform, handle) = (f.name.trim(), f.platform.trim(), f.handle.trim());
    for (field, v) in [("name", name), ("platform", platform), ("handle", handle)] {
        if v.is_empty() {
            return Err((field, "must not be empty".into()));
        }
    }
    let norm = |list: &[String], field| -> Result<Vec<String>, (&'static str, String)> {
        list.iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                normalize_input_address(a)
                    .ok_or((field, format!("{a:?} is not one plain email address")))
            })
            .collect()
    };
    Ok(NewCreator {
        name: name.to_owned(),
        platform: platform.to_lowercase(),
        handle: handle.trim_start_matches('@').to_owned(),
        tags: f.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        emails: norm(&f.emails, "email")?,
        manager_emails: norm(&f.manager_emails, "manager_email")?,
    })
}

/// One mailbox's status line: the worker's own figures when it runs here, else the
/// committed state (which outlives workers and is the same whichever instance works it).
fn mailbox_status(
    name: String,
    health: Option<MailboxHealth>,
    committed: Option<&[crate::store::SyncSummary]>,
    holder: Option<String>,
    paused: bool,
) -> MailboxStatus {
    let now = chrono::Utc::now();
    let c = committed.and_then(|all| all.iter().find(|c| c.mailbox == name));
    let h = health.unwrap_or_default();
    let (highest_uid, processed) = match (c, committed) {
        (Some(c), _) => (c.last_uid, u64::try_from(c.processed).unwrap_or(0)),
        // Reachable, never synced.
        (None, Some(_)) => (0, 0),
        (None, None) => (h.last_uid, h.processed),
    };
    MailboxStatus {
        name,
        connected: h.connected,
        last_sync: h.last_sync,
        last_poll: h.last_poll,
        secs_since_poll: h.last_poll.map(|t| (now - t).num_seconds().max(0)),
        last_commit: c.map(|c| c.last_commit),
        uidvalidity: h.uidvalidity.or(c.map(|c| c.uidvalidity)),
        highest_uid,
        processed,
        last_error: h.last_error,
        reauthorize: h.reauthorize,
        paused,
        holder,
    }
}
