//! `status`: this instance, its mailboxes' figures and the instances sharing the database.

use super::*;

impl Handler for StatusParams {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<StatusResult, ErrorBody> {
        Ok(ctx.status().await)
    }
}

impl AdminContext {
    /// Live figures from the workers; the committed ones (`processed`, `highest_uid`,
    /// `last_commit`) from `mailbox_sync`, so a reload or restart does not reset them. With
    /// the database unreachable, the workers' own view stands in.
    /// Every mailbox this instance knows (the figures of those another instance works
    /// come from the committed state), the paused ones, and the instances sharing the
    /// database with the mailbox count each holds.
    pub(super) async fn status(&self) -> StatusResult {
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
}

/// One mailbox's status line: the worker's own figures when it runs here, else the
/// committed state (which outlives workers and is the same whichever instance works it).
pub(super) fn mailbox_status(
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
