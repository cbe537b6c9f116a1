//! What each admin method does. Parameters are typed; a bad one is reported with its name.

use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;

use super::protocol::{ErrorBody, Request};
use crate::collab::{CollabStatus, Terms};
use crate::imap::Registry;
use crate::mail::normalize_address;
use crate::outreach::{Mailer, OutreachError};
use crate::store::Store;
use crate::store::campaigns::Campaign;
use crate::store::collabs::{CollabError, CollabFilter};
use crate::store::creators::{Creator, NewCreator};
use crate::store::outreach::NewOutreach;

/// Everything the admin methods need from the running daemon.
pub struct AdminContext {
    pub store: Store,
    pub mailboxes: Registry,
    pub mailer: Option<Mailer>,
    /// OAuth2 logins, for `mailbox.authorize`.
    pub logins: std::sync::Arc<crate::oauth::Logins>,
    pub started: Instant,
}

type Outcome = Result<Value, ErrorBody>;

/// Parses parameters, naming the offending field: its path for bad values
/// (`terms.timeline.deadlines[0].date`), its name for missing or unknown ones.
fn params<T: DeserializeOwned>(v: Value) -> Result<T, ErrorBody> {
    let v = if v.is_null() { json!({}) } else { v };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names missing and unknown fields in backticks: "missing field `creator`".
        let named = inner.split('`').nth(1).map(str::to_owned);
        let field = match (path.as_str(), named) {
            (".", Some(n)) => n,
            // A missing field's path is its parent; an unknown field's path is itself.
            (p, Some(n)) if inner.starts_with("missing") => format!("{p}.{n}"),
            (p, _) => p.to_owned(),
        };
        ErrorBody {
            code: "invalid_params".into(),
            message: format!("{field}: {inner}"),
            field: Some(field),
        }
    })
}

fn internal(e: impl std::fmt::Display) -> ErrorBody {
    tracing::error!(error = %e, "admin request failed");
    ErrorBody::new("internal", e.to_string())
}

fn to_value(v: impl serde::Serialize) -> Outcome {
    serde_json::to_value(v).map_err(internal)
}

fn not_found(field: &str, what: &str) -> ErrorBody {
    ErrorBody::field("not_found", field, format!("no {field} {what:?}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParams {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignParams {
    campaign: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    search: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatorParams {
    creator: String,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct CreatorFields {
    name: String,
    platform: String,
    handle: String,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    manager_emails: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// A batch of rows from a CSV file; each row is an object with its `line` number and the
/// fields of the single-row method.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    rows: Vec<Value>,
}

impl ImportParams {
    /// Each row's line number and its parsed fields (or the error naming the field).
    fn rows<T: DeserializeOwned>(self) -> Vec<(u64, Result<T, ErrorBody>)> {
        self.rows
            .into_iter()
            .map(|mut v| {
                let line = v.get("line").and_then(Value::as_u64).unwrap_or(0);
                if let Some(o) = v.as_object_mut() {
                    o.remove("line");
                }
                (line, params(v))
            })
            .collect()
    }
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct OutreachFields {
    message_id: String,
    campaign: String,
    creator: String,
    to: String,
    #[serde(default)]
    subject: String,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendParams {
    campaign: String,
    creator: String,
    subject: String,
    body: String,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollabCreateParams {
    creator: String,
    campaign: String,
    terms: Terms,
    #[serde(default)]
    allow_duplicate: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollabListParams {
    campaign: Option<String>,
    creator: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RematchParams {
    #[serde(default)]
    since: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdParams {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    id: i64,
    terms: Terms,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceParams {
    id: i64,
    to: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelParams {
    id: i64,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignParams {
    message: i64,
    creator: String,
    campaign: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UndeclineParams {
    message: i64,
    reason: String,
}

/// Which login an authorization is for: a mailbox, or the SMTP identity.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginParams {
    mailbox: Option<String>,
    #[serde(default)]
    smtp: bool,
}

/// The flows of `mailbox.authorize`; `auto` is the device flow where the provider offers
/// it, the code flow otherwise.
#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Flow {
    #[default]
    Auto,
    Device,
    Code,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeParams {
    mailbox: Option<String>,
    #[serde(default)]
    smtp: bool,
    #[serde(default)]
    flow: Flow,
    /// Where the provider sends the browser back (collabctl's loopback listener).
    redirect_uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeFinishParams {
    mailbox: Option<String>,
    #[serde(default)]
    smtp: bool,
    code: String,
    state: String,
}

/// Methods that change data; each is logged with the caller.
const MUTATING: &[&str] = &[
    "campaign.create",
    "campaign.archive",
    "creator.add",
    "creator.import",
    "outreach.record",
    "outreach.import",
    "outreach.send",
    "collab.create",
    "collab.update",
    "collab.advance",
    "collab.cancel",
    "inbox.assign",
    "inbox.undecline",
    "inbox.rematch",
    "mailbox.authorize",
    "mailbox.authorize_finish",
];

impl AdminContext {
    /// Runs one request as `actor` (the caller's user, recorded on every event).
    pub async fn dispatch(&self, req: Request, actor: &str) -> Outcome {
        if MUTATING.contains(&req.method.as_str()) {
            info!(actor, method = %req.method, "admin change requested");
        }
        let p = req.params;
        match req.method.as_str() {
            "status" => self.status().await,
            "campaign.create" => {
                let NameParams { name } = params(p)?;
                let name = name.trim();
                if name.is_empty() {
                    return Err(ErrorBody::field("invalid_params", "name", "must not be empty"));
                }
                match self.store.create_campaign(name).await.map_err(internal)? {
                    Some(c) => to_value(c),
                    None => Err(ErrorBody::field(
                        "conflict",
                        "name",
                        format!("campaign {name:?} exists"),
                    )),
                }
            }
            "campaign.list" => to_value(self.store.list_campaigns().await.map_err(internal)?),
            "campaign.archive" => {
                let CampaignParams { campaign } = params(p)?;
                let c = self.campaign(&campaign).await?;
                to_value(self.store.archive_campaign(c.id).await.map_err(internal)?)
            }
            "creator.add" => self.rematched(self.creator_add(params(p)?).await).await,
            "creator.list" => {
                let SearchParams { search } = params(p)?;
                to_value(self.store.list_creators(search.as_deref()).await.map_err(internal)?)
            }
            "creator.show" => {
                let CreatorParams { creator } = params(p)?;
                to_value(self.creator(&creator).await?)
            }
            "creator.import" => self.rematched(self.creator_import(params(p)?).await).await,
            "outreach.record" => {
                let row: OutreachFields = params(p)?;
                let new = self.outreach_rows(vec![Ok(row)]).await?.remove(0)?;
                let added = self.store.record_outreach(&[new]).await.map_err(internal)?;
                self.rematched(Ok(json!({ "recorded": added, "skipped": 1 - added }))).await
            }
            "outreach.import" => self.rematched(self.outreach_import(params(p)?).await).await,
            "outreach.send" => self.outreach_send(params(p)?, actor).await,
            "collab.create" => self.collab_create(params(p)?, actor).await,
            "collab.list" => {
                let f: CollabListParams = params(p)?;
                let filter = CollabFilter {
                    campaign_id: match f.campaign {
                        Some(c) => Some(self.campaign(&c).await?.id),
                        None => None,
                    },
                    creator_id: match f.creator {
                        Some(c) => Some(self.creator(&c).await?.id),
                        None => None,
                    },
                    status: f.status.as_deref().map(parse_status).transpose()?,
                };
                to_value(self.store.list_collaborations(&filter).await.map_err(internal)?)
            }
            "collab.show" => {
                let IdParams { id } = params(p)?;
                self.collab_show(id).await
            }
            "collab.update" => {
                let u: UpdateParams = params(p)?;
                validate_terms(&u.terms)?;
                self.store
                    .update_terms(u.id, &u.terms, actor, u.reason.as_deref())
                    .await
                    .map_err(collab_error)?;
                self.collab_show(u.id).await
            }
            "collab.advance" => {
                let a: AdvanceParams = params(p)?;
                let to = parse_status(&a.to)?;
                if to == CollabStatus::Cancelled {
                    return Err(ErrorBody::field(
                        "invalid_params",
                        "to",
                        "use collab.cancel (a reason is required)",
                    ));
                }
                self.transition(a.id, to, actor, a.reason.as_deref()).await
            }
            "collab.cancel" => {
                let c: CancelParams = params(p)?;
                if c.reason.trim().is_empty() {
                    return Err(ErrorBody::field(
                        "invalid_params",
                        "reason",
                        "a reason is required",
                    ));
                }
                self.transition(c.id, CollabStatus::Cancelled, actor, Some(&c.reason)).await
            }
            "inbox.unmatched" => to_value(self.store.unmatched().await.map_err(internal)?),
            "inbox.assign" => {
                let a: AssignParams = params(p)?;
                let creator = self.creator(&a.creator).await?;
                let campaign = self.campaign(&a.campaign).await?;
                let collab = self
                    .store
                    .assign_unmatched(a.message, creator.id, campaign.id, actor)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| not_found("message", &format!("{} (unmatched)", a.message)))?;
                self.collab_show(collab.id).await
            }
            "inbox.undecline" => {
                let u: UndeclineParams = params(p)?;
                if u.reason.trim().is_empty() {
                    return Err(ErrorBody::field("invalid_params", "reason", "must not be empty"));
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
                self.collab_show(collab.id).await
            }
            "inbox.rematch" => {
                let RematchParams { since } = params(p)?;
                let since = since
                    .map(|s| {
                        crate::ingest::parse_since(&s).ok_or_else(|| {
                            ErrorBody::field("invalid_params", "since", "not a date or timestamp")
                        })
                    })
                    .transpose()?;
                to_value(crate::ingest::rematch(&self.store, since).await.map_err(internal)?)
            }
            "mailbox.authorize" => self.authorize(params(p)?).await,
            "mailbox.authorize_finish" => {
                let f: AuthorizeFinishParams = params(p)?;
                let (key, source) =
                    self.login(&LoginParams { mailbox: f.mailbox, smtp: f.smtp })?;
                let start = self.logins.take_code(&key).ok_or_else(|| {
                    ErrorBody::new(
                        "not_found",
                        "no code flow in progress for this login: start it again",
                    )
                })?;
                let result = source.finish_code(start, &f.code, &f.state).await;
                self.authorize_result(&key, result)?;
                to_value(json!({ "state": "authorized" }))
            }
            "mailbox.authorize_status" => {
                let login: LoginParams = params(p)?;
                let (key, _) = self.login(&login)?;
                let state = self.logins.state(&key).ok_or_else(|| {
                    ErrorBody::new("not_found", "no authorization was started for this login")
                })?;
                to_value(state)
            }
            other => Err(ErrorBody::field(
                "unknown_method",
                "method",
                format!("unknown method {other:?}; see docs/admin-protocol.md"),
            )),
        }
    }

    /// After a change that adds creators or outreach: unmatched messages they now explain
    /// are matched (`ingest::rematch`), reported as `rematched` beside the change's result.
    /// The change is committed already, so a failed re-match is reported, not an error.
    async fn rematched(&self, out: Outcome) -> Outcome {
        let mut out = out?;
        let rematched = match crate::ingest::rematch(&self.store, None).await {
            Ok(r) => json!(r),
            Err(e) => {
                tracing::warn!(error = %e, "rematch after import failed; run inbox.rematch");
                json!({ "error": e.to_string() })
            }
        };
        if let Value::Object(o) = &mut out {
            o.insert("rematched".into(), rematched);
        }
        Ok(out)
    }

    /// The token source of a login named by `mailbox` or `smtp`.
    fn login(
        &self,
        p: &LoginParams,
    ) -> Result<(String, std::sync::Arc<crate::oauth::TokenSource>), ErrorBody> {
        let key = match (&p.mailbox, p.smtp) {
            (Some(name), false) => crate::oauth::Logins::mailbox_key(name),
            (None, true) => crate::oauth::Logins::SMTP_KEY.to_owned(),
            _ => {
                return Err(ErrorBody::field(
                    "invalid_params",
                    "mailbox",
                    "name a mailbox, or set smtp, not both",
                ));
            }
        };
        let source = self.logins.get(&key).ok_or_else(|| {
            ErrorBody::field(
                "not_found",
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
                Err(ErrorBody::new("oauth", e.to_string()))
            }
        }
    }

    /// Starts the device flow (polled to its end in the background) or the code flow.
    async fn authorize(&self, p: AuthorizeParams) -> Outcome {
        use crate::oauth::AuthorizeState;
        let (key, source) = self.login(&LoginParams { mailbox: p.mailbox, smtp: p.smtp })?;
        let device = match p.flow {
            Flow::Device => true,
            Flow::Code => false,
            Flow::Auto => source.has_device_flow(),
        };
        if device {
            let (start, pending) =
                source.start_device().await.map_err(|e| ErrorBody::new("oauth", e.to_string()))?;
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
            let mut answer = serde_json::to_value(start).map_err(internal)?;
            answer["flow"] = json!("device");
            return Ok(answer);
        }
        let redirect = p.redirect_uri.ok_or_else(|| {
            ErrorBody::field("invalid_params", "redirect_uri", "required by the code flow")
        })?;
        let start =
            source.start_code(&redirect).map_err(|e| ErrorBody::new("oauth", e.to_string()))?;
        let url = start.authorize_url.clone();
        self.logins.hold_code(&key, start);
        self.logins.set_state(&key, AuthorizeState::Pending);
        Ok(json!({ "flow": "code", "authorize_url": url }))
    }

    /// Live figures from the workers; the committed ones (`processed`, `highest_uid`,
    /// `last_commit`) from `mailbox_sync`, so a reload or restart does not reset them. With
    /// the database unreachable, the workers' own view stands in.
    async fn status(&self) -> Outcome {
        let committed = self.store.sync_summaries().await.ok();
        let now = chrono::Utc::now();
        let mailboxes: Vec<Value> = self
            .mailboxes
            .read()
            .expect("registry lock")
            .iter()
            .map(|(name, h)| {
                let h = h.lock().expect("health lock").clone();
                let c = committed.as_ref().and_then(|all| all.iter().find(|c| &c.mailbox == name));
                let (highest_uid, processed) = match (c, &committed) {
                    (Some(c), _) => (c.last_uid, u64::try_from(c.processed).unwrap_or(0)),
                    // Reachable, never synced.
                    (None, Some(_)) => (0, 0),
                    (None, None) => (h.last_uid, h.processed),
                };
                json!({
                    "name": name,
                    "connected": h.connected,
                    "last_sync": h.last_sync,
                    "last_poll": h.last_poll,
                    "secs_since_poll": h.last_poll.map(|t| (now - t).num_seconds().max(0)),
                    "last_commit": c.map(|c| c.last_commit),
                    "uidvalidity": h.uidvalidity.or(c.map(|c| c.uidvalidity)),
                    "highest_uid": highest_uid,
                    "processed": processed,
                    "last_error": h.last_error,
                    "reauthorize": h.reauthorize,
                })
            })
            .collect();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs(),
            "database": committed.is_some(),
            "mailboxes": mailboxes,
        }))
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

    async fn creator_add(&self, f: CreatorFields) -> Outcome {
        let new = new_creator(&f)
            .map_err(|(field, msg)| ErrorBody::field("invalid_params", field, msg))?;
        let key = format!("{}:{}", new.platform, new.handle);
        if let Some(existing) = self.store.find_creator(&key).await.map_err(internal)? {
            return Err(ErrorBody::field(
                "conflict",
                "handle",
                format!("creator {key} exists with id {}", existing.id),
            ));
        }
        self.store.upsert_creators(&[new]).await.map_err(internal)?;
        to_value(self.creator(&key).await?)
    }

    async fn creator_import(&self, p: ImportParams) -> Outcome {
        let mut invalid = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        let mut duplicates = 0u64;
        for (line, row) in p.rows::<CreatorFields>() {
            let checked = row.and_then(|r| {
                new_creator(&r)
                    .map_err(|(field, msg)| ErrorBody::field("invalid_params", field, msg))
            });
            match checked {
                Err(e) => {
                    invalid.push(json!({ "line": line, "field": e.field, "reason": e.message }))
                }
                Ok(c) => {
                    if seen.insert((c.platform.clone(), c.handle.to_lowercase())) {
                        rows.push(c);
                    } else {
                        duplicates += 1;
                    }
                }
            }
        }
        let mut counts = self.store.upsert_creators(&rows).await.map_err(internal)?;
        counts.skipped += duplicates;
        Ok(json!({
            "created": counts.created,
            "updated": counts.updated,
            "skipped": counts.skipped,
            "invalid": invalid,
        }))
    }

    /// Checks outreach rows and resolves their creators (all in one query) and campaigns
    /// (remembered across rows: they are nearly always the same few). `outreach.record`
    /// passes one row, an import a chunk.
    async fn outreach_rows(
        &self,
        rows: Vec<Result<OutreachFields, ErrorBody>>,
    ) -> Result<Vec<Result<NewOutreach, ErrorBody>>, ErrorBody> {
        let keys: Vec<&str> =
            rows.iter().map(|r| r.as_ref().map_or("", |r| r.creator.as_str())).collect();
        let creator_ids = self.store.creator_ids(&keys).await.map_err(internal)?;
        let mut campaigns = HashMap::new();
        let mut checked = Vec::with_capacity(rows.len());
        for (row, creator_id) in rows.into_iter().zip(creator_ids) {
            checked.push(match row {
                Ok(r) => self.outreach_row(&r, creator_id, &mut campaigns).await,
                Err(e) => Err(e),
            });
        }
        Ok(checked)
    }

    async fn outreach_row(
        &self,
        r: &OutreachFields,
        creator_id: Option<i64>,
        campaigns: &mut HashMap<String, i64>,
    ) -> Result<NewOutreach, ErrorBody> {
        let message_id = crate::mail::normalize_message_id(&r.message_id).ok_or_else(|| {
            ErrorBody::field("invalid_params", "message_id", "empty, or holds control characters")
        })?;
        let to = normalize_address(&r.to).ok_or_else(|| {
            ErrorBody::field("invalid_params", "to", format!("{:?} is not an address", r.to))
        })?;
        let creator_id = creator_id.ok_or_else(|| not_found("creator", &r.creator))?;
        let campaign_id = match campaigns.get(&r.campaign) {
            Some(id) => *id,
            None => {
                let id = self.campaign(&r.campaign).await?.id;
                campaigns.insert(r.campaign.clone(), id);
                id
            }
        };
        Ok(NewOutreach {
            message_id,
            creator_id,
            campaign_id,
            to_address: to,
            subject: r.subject.clone(),
            sent_at: r.sent_at,
            status: "sent",
            reply_token: None,
            body: None,
        })
    }

    async fn outreach_import(&self, p: ImportParams) -> Outcome {
        let (lines, rows): (Vec<_>, Vec<_>) = p.rows::<OutreachFields>().into_iter().unzip();
        let mut invalid = Vec::new();
        let mut valid = Vec::new();
        for (line, checked) in lines.into_iter().zip(self.outreach_rows(rows).await?) {
            match checked {
                Ok(o) => valid.push(o),
                Err(e) => {
                    invalid.push(json!({ "line": line, "field": e.field, "reason": e.message }))
                }
            }
        }
        let recorded = self.store.record_outreach(&valid).await.map_err(internal)?;
        Ok(json!({
            "recorded": recorded,
            "skipped": valid.len() as u64 - recorded,
            "invalid": invalid,
        }))
    }

    async fn outreach_send(&self, p: SendParams, actor: &str) -> Outcome {
        let mailer = self.mailer.as_ref().ok_or_else(|| {
            ErrorBody::new("not_configured", "no [smtp] section in the configuration")
        })?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        if self.store.is_unsubscribed(creator.id, campaign.id).await.map_err(internal)? {
            return Err(ErrorBody::field(
                "unsubscribed",
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
                ErrorBody::field("invalid_params", "creator", "creator has no email address")
            })?;
        let draft = mailer.draft(&to.address, &p.subject, &p.body).map_err(outreach_error)?;
        if p.dry_run {
            return Ok(json!({ "dry_run": true, "message_id": draft.message_id, "to": to.address,
                              "reply_to": draft.reply_to, "message": draft.preview() }));
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
        };
        // Recorded before sending, so a reply can never arrive for an unknown Message-ID.
        self.store.record_outreach(&[row]).await.map_err(internal)?;
        let sent = mailer.send(draft.message).await;
        self.store.finish_send(&draft.message_id, sent.is_ok()).await.map_err(internal)?;
        sent.map_err(outreach_error)?;
        info!(actor, message_id = %draft.message_id, to = %to.address, "outreach sent");
        Ok(
            json!({ "message_id": draft.message_id, "to": to.address, "reply_to": draft.reply_to, "status": "sent" }),
        )
    }

    async fn collab_create(&self, p: CollabCreateParams, actor: &str) -> Outcome {
        validate_terms(&p.terms)?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        let id = self
            .store
            .create_manual_collaboration(
                creator.id,
                campaign.id,
                &p.terms,
                p.allow_duplicate,
                actor,
            )
            .await
            .map_err(collab_error)?;
        self.collab_show(id).await
    }

    async fn collab_show(&self, id: i64) -> Outcome {
        let collab = self
            .store
            .collaboration(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("id", &id.to_string()))?;
        let mut v = to_value(collab)?;
        v["events"] = to_value(self.store.events(id).await.map_err(internal)?)?;
        v["messages"] = to_value(self.store.linked_messages(id).await.map_err(internal)?)?;
        Ok(v)
    }

    async fn transition(
        &self,
        id: i64,
        to: CollabStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Outcome {
        self.store.transition(id, to, actor, reason).await.map_err(collab_error)?;
        self.collab_show(id).await
    }
}

fn validate_terms(t: &Terms) -> Result<(), ErrorBody> {
    t.validate()
        .map_err(|e| ErrorBody::field("invalid_params", format!("terms.{}", e.field), e.message))
}

fn parse_status(s: &str) -> Result<CollabStatus, ErrorBody> {
    s.parse().map_err(|e: String| ErrorBody::field("invalid_params", "status", e))
}

fn collab_error(e: CollabError) -> ErrorBody {
    match e {
        CollabError::NotFound(id) => not_found("id", &id.to_string()),
        CollabError::Duplicate(existing) => ErrorBody {
            code: "duplicate".into(),
            message: format!(
                "an open collaboration for this creator and campaign exists: {existing} (use allow_duplicate to add another)"
            ),
            field: Some("creator".into()),
        },
        e @ CollabError::IllegalMove { .. } => {
            ErrorBody::field("invalid_transition", "to", e.to_string())
        }
        CollabError::Store(e) => internal(e),
    }
}

fn outreach_error(e: OutreachError) -> ErrorBody {
    match e {
        OutreachError::Address(m) => ErrorBody::field("invalid_params", "to", m),
        e => ErrorBody::new("smtp", e.to_string()),
    }
}

/// Validates and normalises a creator row (used by add and import alike).
fn new_creator(f: &CreatorFields) -> Result<NewCreator, (&'static str, String)> {
    let (name, platform, handle) = (f.name.trim(), f.platform.trim(), f.handle.trim());
    for (field, v) in [("name", name), ("platform", platform), ("handle", handle)] {
        if v.is_empty() {
            return Err((field, "must not be empty".into()));
        }
    }
    let norm = |list: &[String], field| -> Result<Vec<String>, (&'static str, String)> {
        list.iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| normalize_address(a).ok_or((field, format!("{a:?} is not an email address"))))
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
