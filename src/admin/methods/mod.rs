//! What each admin command does, one file per command group (as mini-redis's `cmd/`):
//! `status`, `campaign`, `creator`, `import`, `outreach`, `collab`, `inbox`, `mailbox`,
//! `watch`. Each command's parameter type implements [`Handler`], answering its
//! `Params::Output`, so the compiler checks every command against the registry
//! (`admin_commands!` in `protocol`), from which [`AdminContext::dispatch`] is generated.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::info;

use super::protocol::{self as wire, *};
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

mod campaign;
mod collab;
mod creator;
mod import;
mod inbox;
mod mailbox;
mod outreach;
mod status;
mod watch;

pub use import::Connection;

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

/// What a handler gets besides its parameters: who calls (recorded on every event) and the
/// state of the caller's connection (an import in progress).
pub struct Cx<'a> {
    pub actor: &'a str,
    pub conn: &'a mut Connection,
}

/// One admin command's behaviour: its parameters, handled, give its result.
pub(super) trait Handler: Params + Sized {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<Self::Output, ErrorBody>;
}

/// Expands the registry into the dispatch: one arm per command, each its handler.
macro_rules! define_dispatch {
    ($($name:literal => $variant:ident($params:ty) -> $out:ty, $rw:ident;)*) => {
        impl AdminContext {
            async fn run(&self, call: Call, cx: &mut Cx<'_>) -> Outcome {
                match call {
                    $(Call::$variant(p) => answer::<$params>(Handler::handle(p, self, cx).await?),)*
                }
            }
        }
    };
}

crate::admin_commands!(define_dispatch);

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
        self.run(call, &mut Cx { actor, conn }).await
    }
}

impl AdminContext {
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

    pub(super) async fn campaign(&self, key: &str) -> Result<Campaign, ErrorBody> {
        self.store
            .find_campaign(key)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("campaign", key))
    }

    pub(super) async fn creator(&self, key: &str) -> Result<Creator, ErrorBody> {
        self.store
            .find_creator(key)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("creator", key))
    }
}
