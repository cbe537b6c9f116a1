//! Wire types shared by the server and `collabctl`: every call with its typed parameters
//! ([`Call`]), what each returns ([`Params::Output`]) and every error code ([`ErrorCode`]).
//! A renamed field is a compile error on both sides, not a run-time surprise.
//!
//! Wire types are not database rows: the views at the end of this file (campaigns,
//! creators, collaborations with typed terms, events, messages) are what the protocol
//! promises, and the server converts rows into them (`admin::views`). This module imports
//! only the collaboration domain (`crate::collab`), never the store, the config, OAuth or
//! ingest.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::collab::{CollabStatus, Compensation, Deliverable, EventKind, Terms, Timeline};

/// Longest request line accepted; longer lines get `too_large` and the connection closes.
pub const MAX_LINE: usize = 1024 * 1024;

/// One request line as read: the method is checked, then the params for that method
/// ([`Call::parse`]), so a bad parameter is reported by its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub id: Value,
    pub method: String,
    #[serde(default)]
    pub params: Value,
}

/// A request as a client sends it: `{"id": …, "method": …, "params": {…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Outgoing<'a> {
    pub id: u64,
    #[serde(flatten)]
    pub call: &'a Call,
}

/// The registry of admin commands: each line is one command, once — its wire name, its
/// [`Call`] variant with its parameters, its result, and whether it changes data (`write`,
/// logged with its caller) or not (`read`). It is expanded twice: here into [`Call`], its
/// [`Params`] impls and `Call::is_mutating`, and on the server into the dispatch, which
/// calls each command's `Handler` (`admin::methods`). Adding a command is one line here, its
/// parameter and result types, and its handler (see docs/adding-a-command.md).
#[macro_export]
#[doc(hidden)]
macro_rules! admin_commands {
    ($then:ident) => {
        $then! {
            "status" => Status(StatusParams) -> StatusResult, read;
            "campaign.create" => CampaignCreate(CampaignCreate) -> Campaign, write;
            "campaign.list" => CampaignList(CampaignList) -> Vec<Campaign>, read;
            "campaign.archive" => CampaignArchive(CampaignArchive) -> Campaign, write;
            "campaign.bind" => CampaignBind(CampaignBind) -> Campaign, write;
            "creator.add" => CreatorAdd(CreatorFields) -> Creator, write;
            "creator.list" => CreatorList(CreatorList) -> Listing<Creator>, read;
            "creator.show" => CreatorShow(CreatorShow) -> Creator, read;
            "creator.import" => CreatorImport(CreatorImport) -> CreatorImportReport, write;
            "outreach.record" => OutreachRecord(OutreachFields) -> RecordReport, write;
            "outreach.import" => OutreachImport(OutreachImport) -> OutreachImportReport, write;
            "outreach.send" => OutreachSend(OutreachSend) -> SendResult, write;
            "collab.create" => CollabCreate(CollabCreate) -> CollabDetail, write;
            "collab.list" => CollabList(CollabList) -> Listing<Collaboration>, read;
            "collab.show" => CollabShow(CollabShow) -> CollabDetail, read;
            "collab.update" => CollabUpdate(CollabUpdate) -> CollabDetail, write;
            "collab.advance" => CollabAdvance(CollabAdvance) -> CollabDetail, write;
            "collab.cancel" => CollabCancel(CollabCancel) -> CollabDetail, write;
            "inbox.unmatched" => InboxUnmatched(InboxUnmatched) -> Listing<UnmatchedMessage>, read;
            "inbox.assign" => InboxAssign(InboxAssign) -> CollabDetail, write;
            "inbox.undecline" => InboxUndecline(InboxUndecline) -> CollabDetail, write;
            "inbox.rematch" => InboxRematch(InboxRematch) -> RematchReport, write;
            "watch" => Watch(Watch) -> WatchEvent, read;
            "mailbox.authorize" => MailboxAuthorize(MailboxAuthorize) -> AuthorizeStart, write;
            "mailbox.authorize_finish" => MailboxAuthorizeFinish(MailboxAuthorizeFinish) -> AuthorizeState, write;
            "mailbox.authorize_status" => MailboxAuthorizeStatus(MailboxAuthorizeStatus) -> AuthorizeState, read;
            "mailbox.add" => MailboxAdd(MailboxTable) -> MailboxEntry, write;
            "mailbox.list" => MailboxList(MailboxList) -> Vec<MailboxEntry>, read;
            "mailbox.show" => MailboxShow(MailboxShow) -> MailboxEntry, read;
            "mailbox.pause" => MailboxPause(MailboxPause) -> MailboxEntry, write;
            "mailbox.resume" => MailboxResume(MailboxResume) -> MailboxEntry, write;
            "mailbox.remove" => MailboxRemove(MailboxRemove) -> MailboxEntry, write;
        }
    };
}

/// `write` commands change data.
macro_rules! mutates {
    (write) => {
        true
    };
    (read) => {
        false
    };
}

/// Expands the registry into [`Call`] and the [`Params`] impls.
macro_rules! define_calls {
    ($($name:literal => $variant:ident($params:ty) -> $out:ty, $rw:ident;)*) => {
        /// Every admin call with its parameters. On the wire:
        /// `{"method": "…", "params": {…}}`.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "method", content = "params")]
        pub enum Call {
            $(
                #[serde(rename = $name)]
                $variant($params),
            )*
        }

        impl Call {
            /// Whether the call changes data (each such call is logged with its caller).
            pub fn is_mutating(&self) -> bool {
                match self {
                    $(Call::$variant(_) => mutates!($rw),)*
                }
            }

            /// The method's wire name.
            pub fn method(&self) -> &'static str {
                match self {
                    $(Call::$variant(_) => $name,)*
                }
            }
        }

        $(
            impl From<$params> for Call {
                fn from(p: $params) -> Call {
                    Call::$variant(p)
                }
            }
            impl Params for $params {
                type Output = $out;
            }
        )*
    };
}

admin_commands!(define_calls);

impl Call {
    /// Parses a call: an unknown method is `unknown_method`; bad params are
    /// `invalid_params` naming the field: its path for bad values
    /// (`terms.timeline.deadlines[0].date`), its name for missing or unknown ones. Missing
    /// or `null` params are `{}`.
    pub fn parse(method: &str, params: Value) -> Result<Call, ErrorBody> {
        let params = if params.is_null() { json!({}) } else { params };
        // The tag is read before the content, so the params are deserialized directly (not
        // buffered) and serde_path_to_error sees their paths under `params`.
        let envelope = json!({ "method": method, "params": params });
        serde_path_to_error::deserialize(envelope).map_err(|e| {
            let path = e.path().to_string();
            if path == "method" {
                return ErrorBody::field(
                    ErrorCode::UnknownMethod,
                    "method",
                    format!("unknown method {method:?}; see docs/admin-protocol.md"),
                );
            }
            let path = match path.strip_prefix("params") {
                Some("") => ".".to_owned(),
                Some(rest) => rest.trim_start_matches('.').to_owned(),
                None => path,
            };
            invalid_params(&path, e.into_inner().to_string())
        })
    }
}

/// The `invalid_params` error for a serde error at `path` (`.` for the params object).
pub fn invalid_params(path: &str, inner: String) -> ErrorBody {
    // serde names missing and unknown fields in backticks: "missing field `creator`".
    let named = inner.split('`').nth(1).map(str::to_owned);
    let field = match (path, named) {
        (".", Some(n)) => n,
        // A missing field's path is its parent; an unknown field's path is itself.
        (p, Some(n)) if inner.starts_with("missing") => format!("{p}.{n}"),
        (p, _) => p.to_owned(),
    };
    ErrorBody {
        code: ErrorCode::InvalidParams,
        message: format!("{field}: {inner}"),
        field: Some(field),
    }
}

/// The parameters of one method, and what it answers.
pub trait Params: Serialize + Into<Call> {
    type Output: Serialize + DeserializeOwned;
}

// ---- Parameters ----

/// `status` takes nothing (and, as before, ignores whatever it is given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusParams {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignList {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignCreate {
    pub name: String,
    /// Bind the campaign to these mailboxes: replies arriving elsewhere never match it.
    /// Empty: unbound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mailboxes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignArchive {
    pub campaign: String,
}

/// Replaces a campaign's mailboxes (empty: unbound, it matches in every mailbox).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignBind {
    pub campaign: String,
    #[serde(default)]
    pub mailboxes: Vec<String>,
}

/// One creator, for `creator.add` and each row of `creator.import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatorFields {
    pub name: String,
    pub platform: String,
    pub handle: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub manager_emails: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatorList {
    pub search: Option<String>,
    /// Rows after this id in the list's order (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many rows (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatorShow {
    pub creator: String,
}

/// Paging of a list (`after`, `limit` in its params), keyset on id. With neither field the whole list is answered as an
/// array; with either, one page as a [`Listing::Page`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageParams {
    /// Rows after this id in the list's order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many rows (1 to [`MAX_PAGE`]; [`DEFAULT_PAGE`] when only `after` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Rows in a page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page.
pub const MAX_PAGE: u32 = 10_000;

/// The lists: their paging fields are their own (not flattened), so a bad one is named.
pub trait Paged {
    fn page(&self) -> PageParams;
}

macro_rules! paged {
    ($($t:ty),*) => {
        $(impl Paged for $t {
            fn page(&self) -> PageParams {
                PageParams { after: self.after, limit: self.limit }
            }
        })*
    };
}

paged!(CreatorList, CollabList, InboxUnmatched);

impl PageParams {
    pub fn is_paged(&self) -> bool {
        self.after.is_some() || self.limit.is_some()
    }
}

/// A list: the whole of it (no paging asked), or one page and where the next one starts
/// (`next_after`, absent on the last page).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Listing<T> {
    All(Vec<T>),
    Page {
        items: Vec<T>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_after: Option<i64>,
    },
}

impl<T> Listing<T> {
    /// The rows, and where the next page starts.
    pub fn into_parts(self) -> (Vec<T>, Option<i64>) {
        match self {
            Listing::All(items) => (items, None),
            Listing::Page { items, next_after } => (items, next_after),
        }
    }
}

/// One CSV row of an import: its line number and the fields of the single-row method.
/// Rows travel as JSON objects so the server can report each bad one by line and field
/// without refusing the batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row<T> {
    pub line: u64,
    #[serde(flatten)]
    pub fields: T,
}

/// Turns typed rows into the objects an import carries.
pub fn rows<T: Serialize>(rows: Vec<Row<T>>) -> Vec<Value> {
    rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null)).collect()
}

/// A chunk of `creator.import` rows (each a [`Row`] of [`CreatorFields`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatorImport {
    pub rows: Vec<Value>,
    /// Run every check and every write, then roll back: nothing is kept.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Keep the valid rows when some are invalid (they are listed); without it one invalid
    /// row means nothing is written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_invalid: bool,
    /// More chunks of this import follow on this connection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
}

/// A chunk of `outreach.import` rows (each a [`Row`] of [`OutreachFields`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutreachImport {
    pub rows: Vec<Value>,
    /// Run every check and every write, then roll back: nothing is kept.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Keep the valid rows when some are invalid (they are listed); without it one invalid
    /// row means nothing is written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_invalid: bool,
    /// More chunks of this import follow on this connection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
}

/// How a chunk takes part in its import (the flags of [`CreatorImport`] and
/// [`OutreachImport`]). An import is one transaction held by its connection: every chunk
/// but the last says `more`, and the last one commits, or rolls everything back (a dry
/// run, or an invalid row without `skip_invalid`). A connection that closes, or sends
/// another method, before the last chunk writes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportChunk {
    pub dry_run: bool,
    pub skip_invalid: bool,
    pub more: bool,
}

impl CreatorImport {
    pub fn chunk(&self) -> ImportChunk {
        ImportChunk { dry_run: self.dry_run, skip_invalid: self.skip_invalid, more: self.more }
    }
}

impl OutreachImport {
    pub fn chunk(&self) -> ImportChunk {
        ImportChunk { dry_run: self.dry_run, skip_invalid: self.skip_invalid, more: self.more }
    }
}

/// One outreach message sent elsewhere, for `outreach.record` and each import row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutreachFields {
    pub message_id: String,
    pub campaign: String,
    pub creator: String,
    pub to: String,
    #[serde(default)]
    pub subject: String,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The mailbox it was sent from (a running mailbox's name); absent: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutreachSend {
    pub campaign: String,
    pub creator: String,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Send as this mailbox: through its `[mailboxes.smtp]` (the default `[smtp]` when it
    /// has none), recorded on the outreach. Absent: the default, mailbox unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabCreate {
    pub creator: String,
    pub campaign: String,
    pub terms: Terms,
    #[serde(default)]
    pub allow_duplicate: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabList {
    pub campaign: Option<String>,
    pub creator: Option<String>,
    pub status: Option<CollabStatus>,
    /// Only collaborations created at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows after this id in the list's order (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many rows (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabShow {
    pub id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabUpdate {
    pub id: i64,
    pub terms: Terms,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabAdvance {
    pub id: i64,
    pub to: CollabStatus,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollabCancel {
    pub id: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxUnmatched {
    /// Rows after this id in the list's order (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// At most this many rows (see [`PageParams`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxAssign {
    pub message: i64,
    pub creator: String,
    pub campaign: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxUndecline {
    pub message: i64,
    pub reason: String,
}

/// `inbox.rematch`: unmatched messages received since `since` (all when absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxRematch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// `watch`: the connection streams a [`WatchEvent`] line (with the request's id) for each
/// collaboration created and each unmatched message, as they are committed, until the
/// client closes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {}

/// One event of `watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    Collaboration(Box<Collaboration>),
    Unmatched(UnmatchedMessage),
}

/// The re-match that ran after a change adding creators or outreach: its report, or why it
/// failed (the change itself is committed; `inbox.rematch` retries).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rematched {
    Done(RematchReport),
    Failed { error: String },
}

/// The flows of `mailbox.authorize`; `auto` is the device flow where the provider offers
/// it, the code flow otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    #[default]
    Auto,
    Device,
    Code,
}

impl std::str::FromStr for Flow {
    type Err = String;

    fn from_str(s: &str) -> Result<Flow, String> {
        match s {
            "auto" => Ok(Flow::Auto),
            "device" => Ok(Flow::Device),
            "code" => Ok(Flow::Code),
            _ => Err(format!("{s:?} is not a flow: auto, device or code")),
        }
    }
}

/// Which login: a mailbox by name, or (`smtp`) the SMTP identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxAuthorizeStatus {
    pub mailbox: Option<String>,
    #[serde(default)]
    pub smtp: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxAuthorize {
    pub mailbox: Option<String>,
    #[serde(default)]
    pub smtp: bool,
    #[serde(default)]
    pub flow: Flow,
    /// Where the provider sends the browser back (collabctl's loopback listener).
    pub redirect_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxAuthorizeFinish {
    pub mailbox: Option<String>,
    #[serde(default)]
    pub smtp: bool,
    pub code: String,
    pub state: String,
}

/// `mailbox.list`: the file's mailboxes and the database's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxList {}

macro_rules! by_name {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub mailbox: String,
        }
    )*};
}

by_name! {
    /// `mailbox.show`: one mailbox, from the file or the database.
    MailboxShow;
    /// `mailbox.pause`: a database mailbox's worker stops; its row stays.
    MailboxPause;
    /// `mailbox.resume`: a paused mailbox runs again.
    MailboxResume;
    /// `mailbox.remove`: the row goes and its worker stops (its mail and sync state stay).
    MailboxRemove;
}

// ---- Views: what the protocol shows of stored things ----

/// A campaign.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub archived_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The mailboxes the campaign is bound to; empty: unbound.
    #[serde(default)]
    pub mailboxes: Vec<String>,
}

/// A Creator Pool entry with its addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Creator {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub handle: String,
    pub tags: Vec<String>,
    pub emails: Vec<CreatorEmail>,
    pub unsubscribed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One address of a creator: `creator` or `manager`, and whether collabd learned it from
/// a reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatorEmail {
    pub address: String,
    pub role: String,
    pub learned: bool,
}

/// A collaboration, its terms typed as `collab.create` takes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Collaboration {
    pub id: i64,
    pub status: CollabStatus,
    pub source: String,
    pub creator: CreatorRef,
    pub campaign: CampaignRef,
    pub deliverables: Vec<Deliverable>,
    /// Empty (`{}`) for a collaboration created from a reply, until terms are set.
    pub compensation: Compensation,
    pub timeline: Timeline,
    pub additional_terms: Option<String>,
    pub thread_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Collaboration {
    /// Its terms, as `collab.update` would take them.
    pub fn terms(&self) -> Terms {
        Terms {
            deliverables: self.deliverables.clone(),
            compensation: self.compensation.clone(),
            timeline: self.timeline.clone(),
            additional_terms: self.additional_terms.clone(),
        }
    }
}

/// The creator part of a collaboration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatorRef {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub handle: String,
}

/// The campaign part of a collaboration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CampaignRef {
    pub id: i64,
    pub name: String,
}

/// One entry of a collaboration's audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub from_status: Option<CollabStatus>,
    pub to_status: Option<CollabStatus>,
    pub actor: String,
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One message linked to a collaboration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkedMessage {
    pub id: i64,
    pub kind: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub sent_date: Option<chrono::DateTime<chrono::Utc>>,
    pub reply_text: Option<String>,
}

/// A message waiting for a person to decide what it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnmatchedMessage {
    pub id: i64,
    pub mailbox: String,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub sent_date: Option<chrono::DateTime<chrono::Utc>>,
    pub reply_text: Option<String>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What a re-match did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RematchReport {
    /// Unmatched messages looked at.
    pub examined: u64,
    /// Of those, how many now matched (replies and declines).
    pub matched: u64,
    pub collaborations_created: u64,
}

/// Where an operator's authorization of a login stands (`mailbox.authorize_status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthorizeState {
    /// Waiting for the operator (device flow) or for the redirect (code flow).
    Pending,
    /// A refresh token is stored; the login's worker was woken.
    Authorized,
    Failed {
        error: String,
    },
}

/// What the operator is shown to approve a device authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceStart {
    pub verification_uri: String,
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

// ---- Results ----

/// Where a mailbox is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxSource {
    File,
    Database,
}

/// One mailbox in `mailbox.*` answers: its settings (secrets are only ever named) and
/// whether it is paused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailboxEntry {
    pub name: String,
    pub source: MailboxSource,
    pub paused: bool,
    /// What the tables show: where it connects, as whom, which folder, how it logs in.
    pub host: String,
    pub port: u16,
    pub username: String,
    pub folder: String,
    pub auth: String,
    /// Every setting, as the file would have it.
    pub settings: MailboxTable,
    /// The logins (`imap`, `smtp`) of a database mailbox whose password is stored, sealed;
    /// the password itself is never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_passwords: Vec<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A `[[mailboxes]]` table as JSON (the keys `config/collabd.example.toml` documents), as
/// `mailbox.add` takes it and `mailbox.*` show it. The daemon reads it by the config's own
/// rules, so the file and the socket cannot drift apart; secrets are only ever named.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct MailboxTable(pub serde_json::Map<String, Value>);

/// `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResult {
    pub version: String,
    pub uptime_secs: u64,
    pub database: bool,
    pub mailboxes: Vec<MailboxStatus>,
    /// The instance that answered.
    #[serde(default)]
    pub instance: Option<String>,
    /// The instances sharing the database, newest heartbeat first (a dead one stays listed
    /// until an instance starts; see docs/admin-protocol.md).
    #[serde(default)]
    pub instances: Vec<InstanceStatus>,
}

/// One instance in `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// Mailbox leases it holds.
    pub mailboxes: u64,
}

/// One mailbox in `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailboxStatus {
    pub name: String,
    pub connected: bool,
    pub last_sync: Option<chrono::DateTime<chrono::Utc>>,
    pub last_poll: Option<chrono::DateTime<chrono::Utc>>,
    pub secs_since_poll: Option<i64>,
    pub last_commit: Option<chrono::DateTime<chrono::Utc>>,
    pub uidvalidity: Option<u32>,
    pub highest_uid: u32,
    pub processed: u64,
    pub last_error: Option<String>,
    pub reauthorize: bool,
    /// A database mailbox that `mailbox.pause` stopped.
    #[serde(default)]
    pub paused: bool,
    /// The instance whose lease lets it work the mailbox; none while nobody holds it.
    #[serde(default)]
    pub holder: Option<String>,
}

/// A row an import refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvalidRow {
    pub line: u64,
    pub field: Option<String>,
    pub reason: String,
}

/// What a creator import did (or, on a dry run or before its last chunk, would do), for
/// the whole import so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreatorImportReport {
    /// Rows that passed every check.
    pub valid: u64,
    pub created: u64,
    pub updated: u64,
    /// Valid rows that changed nothing.
    pub skipped: u64,
    pub invalid: Vec<InvalidRow>,
    /// Whether the rows were written: false on a dry run, before the last chunk, and when
    /// invalid rows stopped the import.
    #[serde(default)]
    pub committed: bool,
    /// The re-match the import caused; present once it committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rematched: Option<Rematched>,
}

/// What an outreach import did (or would do), for the whole import so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutreachImportReport {
    /// Rows that passed every check.
    pub valid: u64,
    pub recorded: u64,
    /// Valid rows whose Message-ID was recorded before.
    pub skipped: u64,
    pub invalid: Vec<InvalidRow>,
    /// As for [`CreatorImportReport::committed`].
    #[serde(default)]
    pub committed: bool,
    /// The re-match the import caused; present once it committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rematched: Option<Rematched>,
}

/// `outreach.record`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordReport {
    pub recorded: u64,
    pub skipped: u64,
    /// The re-match the new outreach caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rematched: Option<Rematched>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// `outreach.send`: `status` once sent; with `dry_run`, the rendered `message` instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendResult {
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    pub message_id: String,
    pub to: String,
    pub reply_to: Option<String>,
    /// The From address it was sent as.
    #[serde(default)]
    pub from: String,
    /// The mailbox it was sent as (`mailbox` of the call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A collaboration with its audit trail and messages (`collab.show` and every change).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollabDetail {
    #[serde(flatten)]
    pub collab: Collaboration,
    pub events: Vec<Event>,
    pub messages: Vec<LinkedMessage>,
}

/// How `mailbox.authorize` goes on: where to enter a code, or which address to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub enum AuthorizeStart {
    Device(DeviceStart),
    Code { authorize_url: String },
}

// ---- Responses and errors ----

/// One response line: exactly one of `result` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Every error code; docs/admin-protocol.md lists them (a test checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not UTF-8, or not a request.
    InvalidRequest,
    UnknownMethod,
    /// With `field`, a path such as `terms.deliverables[0].post_type`.
    InvalidParams,
    NotFound,
    Conflict,
    /// An open collaboration exists; its id is in the message.
    Duplicate,
    /// Names the allowed next states.
    InvalidTransition,
    Unsubscribed,
    NotConfigured,
    Smtp,
    /// The OAuth2 provider refused or could not be reached.
    Oauth,
    Forbidden,
    TooLarge,
    Timeout,
    Busy,
    Internal,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(Value::String(s)) => f.write_str(&s),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// A structured error: a stable `code` for scripts, a sentence for people, and the
/// offending parameter when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody { code, message: message.into(), field: None }
    }

    /// An error about one parameter.
    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody { code, message: message.into(), field: Some(field.into()) }
    }
}

impl Response {
    /// A success.
    pub fn ok(id: Value, result: Value) -> Self {
        Response { id, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(id: Value, error: ErrorBody) -> Self {
        Response { id, result: None, error: Some(error) }
    }
}
