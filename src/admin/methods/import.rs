//! Imports on the daemon's side (`creator.import`, `outreach.import`): every chunk of one
//! CSV import is checked and written in one transaction that its connection holds
//! ([`ImportSession`]), so an import is all or nothing however many chunks it travels in.
//!
//! - Each chunk's rows are checked (fields, addresses, creators and campaigns named),
//!   then written inside the transaction, also on a dry run: a dry run meets every check
//!   and every database constraint the write would, then rolls back.
//! - A key repeated inside one file (a creator's `platform:handle`, an address, an
//!   outreach Message-ID) is an invalid row naming the line it repeats; an address that
//!   belongs to another creator already is an invalid row naming that creator. Nothing is
//!   dropped silently.
//! - The last chunk (`more: false`) commits, unless it is a dry run or a row was invalid
//!   and `skip_invalid` is off: then everything rolls back. A connection that closes, or
//!   sends another method, before the last chunk rolls back too.

use std::collections::HashMap;

use super::creator::new_creator;
use super::*;
use crate::store::Tx;
use crate::store::creators::{self, NewCreator};
use crate::store::outreach::{self, NewOutreach};

/// One import in progress on a connection.
pub struct ImportSession {
    tx: Tx,
    flags: ImportChunk,
    /// Keys seen so far in the file (`creator tiktok:ana`, `address a@b`, `message_id x`),
    /// with the line that first carried each.
    seen: HashMap<String, u64>,
    report: Report,
}

/// The report of the import so far, by kind.
#[derive(Clone)]
enum Report {
    Creator(CreatorImportReport),
    Outreach(OutreachImportReport),
}

impl Report {
    fn invalid(&mut self) -> &mut Vec<InvalidRow> {
        match self {
            Report::Creator(r) => &mut r.invalid,
            Report::Outreach(r) => &mut r.invalid,
        }
    }

    fn method(&self) -> &'static str {
        match self {
            Report::Creator(_) => "creator.import",
            Report::Outreach(_) => "outreach.import",
        }
    }
}

/// The per-connection state of the admin socket: an import in progress, if any.
#[derive(Default)]
pub struct Connection {
    pub import: Option<ImportSession>,
}

impl Connection {
    /// Whether `method` may be served now: while an import is in progress only its own
    /// chunks are. Anything else abandons the import (rolled back) and is refused.
    pub fn check(&mut self, method: &str) -> Result<(), ErrorBody> {
        match &self.import {
            Some(s) if s.report.method() != method => {
                let expected = s.report.method();
                self.import = None;
                Err(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "{method} during an unfinished {expected}: the import was rolled back \
                         and nothing of it was written"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The path of the first string holding NUL in `v` (`name`, `emails[1]`), if any.
fn nul_field(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) => s.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, x)| nul_field(x, &format!("{path}[{i}]")))
        }
        Value::Object(fields) => fields.iter().find_map(|(k, x)| {
            let key = k.replace('\0', "\\0");
            nul_field(x, &if path.is_empty() { key } else { format!("{path}.{key}") })
        }),
        _ => None,
    }
}

/// Rows holding NUL are refused here, by line and field, before anything else reads them.
fn without_nul(rows: Vec<Value>, invalid: &mut Vec<InvalidRow>) -> Vec<Value> {
    rows.into_iter()
        .filter(|row| match nul_field(row, "") {
            None => true,
            Some(field) => {
                let line = row.get("line").and_then(Value::as_u64).unwrap_or(0);
                let reason = "must not contain NUL (U+0000)".to_owned();
                invalid.push(InvalidRow { line, field: Some(field), reason });
                false
            }
        })
        .collect()
}

fn row_error(line: u64, field: &str, reason: impl Into<String>) -> InvalidRow {
    InvalidRow { line, field: Some(field.to_owned()), reason: reason.into() }
}

impl Handler for CreatorImport {
    async fn handle(
        self,
        ctx: &AdminContext,
        cx: &mut Cx<'_>,
    ) -> Result<CreatorImportReport, ErrorBody> {
        let flags = self.chunk();
        let mut session = ctx.import_session(cx.conn, flags, true).await?;
        // On any error the session is dropped here, and with it the transaction.
        session.creators(self.rows).await?;
        match ctx.end_chunk(cx.conn, session, flags.more).await? {
            Report::Creator(r) => Ok(r),
            Report::Outreach(_) => unreachable!("a creator import"),
        }
    }
}

impl Handler for OutreachImport {
    async fn handle(
        self,
        ctx: &AdminContext,
        cx: &mut Cx<'_>,
    ) -> Result<OutreachImportReport, ErrorBody> {
        let flags = self.chunk();
        let mut session = ctx.import_session(cx.conn, flags, false).await?;
        ctx.outreach_chunk(&mut session, self.rows).await?;
        match ctx.end_chunk(cx.conn, session, flags.more).await? {
            Report::Outreach(r) => Ok(r),
            Report::Creator(_) => unreachable!("an outreach import"),
        }
    }
}

impl AdminContext {
    /// The import in progress on `conn`, or a new one (its transaction begun) for its
    /// first chunk.
    async fn import_session(
        &self,
        conn: &mut Connection,
        flags: ImportChunk,
        is_creator: bool,
    ) -> Result<ImportSession, ErrorBody> {
        match conn.import.take() {
            Some(s) => {
                if (s.flags.dry_run, s.flags.skip_invalid) != (flags.dry_run, flags.skip_invalid) {
                    return Err(ErrorBody::new(
                        ErrorCode::InvalidParams,
                        "dry_run and skip_invalid must be the same in every chunk of an \
                         import: the import was rolled back",
                    ));
                }
                Ok(s)
            }
            None => Ok(ImportSession {
                tx: self.store.begin().await.map_err(internal)?,
                flags,
                seen: HashMap::new(),
                report: match is_creator {
                    true => Report::Creator(CreatorImportReport::default()),
                    false => Report::Outreach(OutreachImportReport::default()),
                },
            }),
        }
    }

    /// After a chunk: keeps the session on the connection when more chunks follow, else
    /// finishes the import. Answers the report so far.
    async fn end_chunk(
        &self,
        conn: &mut Connection,
        session: ImportSession,
        more: bool,
    ) -> Result<Report, ErrorBody> {
        if more {
            let report = session.report.clone();
            conn.import = Some(session);
            return Ok(report);
        }
        self.finish(session).await
    }

    /// Commits or rolls back the import and answers its report.
    async fn finish(&self, session: ImportSession) -> Result<Report, ErrorBody> {
        let ImportSession { tx, flags, mut report, .. } = session;
        report.invalid().sort_by_key(|r| r.line);
        let refused = !report.invalid().is_empty() && !flags.skip_invalid;
        let committed = !flags.dry_run && !refused;
        if committed {
            tx.commit().await.map_err(failed)?;
        } else {
            tx.rollback().await.map_err(internal)?;
        }
        let rematched = match committed {
            true => Some(self.rematch_after_change().await),
            false => None,
        };
        match &mut report {
            Report::Creator(r) => {
                (r.committed, r.rematched) = (committed, rematched);
                info!(committed, created = r.created, updated = r.updated, "creator import");
            }
            Report::Outreach(r) => {
                (r.committed, r.rematched) = (committed, rematched);
                info!(committed, recorded = r.recorded, "outreach import");
            }
        }
        Ok(report)
    }

    /// Checks a chunk of outreach rows (the creators, campaigns and mailboxes they name
    /// must exist; a Message-ID only once in the file) and records the valid ones.
    async fn outreach_chunk(
        &self,
        session: &mut ImportSession,
        rows: Vec<Value>,
    ) -> Result<(), ErrorBody> {
        let mut invalid = Vec::new();
        let rows = without_nul(rows, &mut invalid);
        let (lines, rows): (Vec<_>, Vec<_>) =
            import_rows::<OutreachFields>(rows).into_iter().unzip();
        let mut valid: Vec<NewOutreach> = Vec::new();
        for (line, checked) in lines.into_iter().zip(self.outreach_rows(rows).await?) {
            let checked = checked
                .map_err(|e| InvalidRow { line, field: e.field, reason: e.message })
                .and_then(|o| {
                    let key = format!("message_id {}", o.message_id);
                    match session.seen.get(&key) {
                        Some(first) => Err(row_error(
                            line,
                            "message_id",
                            format!("{} is on line {first} already", o.message_id),
                        )),
                        None => {
                            session.seen.insert(key, line);
                            Ok(o)
                        }
                    }
                });
            match checked {
                Ok(o) => valid.push(o),
                Err(e) => invalid.push(e),
            }
        }
        let recorded = outreach::record_outreach(&mut session.tx, &valid).await.map_err(failed)?;
        let Report::Outreach(r) = &mut session.report else { unreachable!("outreach import") };
        r.valid += valid.len() as u64;
        r.recorded += recorded;
        r.skipped += valid.len() as u64 - recorded;
        r.invalid.extend(invalid);
        Ok(())
    }
}

/// A database error inside an import: the transaction is gone, and so is everything the
/// import wrote.
fn failed(e: impl std::fmt::Display) -> ErrorBody {
    internal(format!("the import failed and nothing of it was written: {e}"))
}

impl ImportSession {
    /// Checks a chunk of creator rows and upserts the valid ones.
    async fn creators(&mut self, rows: Vec<Value>) -> Result<(), ErrorBody> {
        let mut invalid = Vec::new();
        let rows = without_nul(rows, &mut invalid);
        let mut candidates: Vec<(u64, NewCreator)> = Vec::new();
        for (line, row) in import_rows::<CreatorFields>(rows) {
            let checked = row
                .map_err(|e| InvalidRow { line, field: e.field, reason: e.message })
                .and_then(|r| new_creator(&r).map_err(|(f, reason)| row_error(line, f, reason)));
            match checked {
                Ok(c) => candidates.push((line, c)),
                Err(e) => invalid.push(e),
            }
        }
        let addresses: Vec<String> = candidates
            .iter()
            .flat_map(|(_, c)| c.emails.iter().chain(&c.manager_emails).cloned())
            .collect();
        let owners = creators::address_owners(&mut self.tx, &addresses).await.map_err(failed)?;
        let mut valid = Vec::new();
        for (line, c) in candidates {
            match self.check_creator(line, &c, &owners) {
                Ok(()) => valid.push(c),
                Err(e) => invalid.push(e),
            }
        }
        let counts = creators::upsert_creators(&mut self.tx, &valid).await.map_err(failed)?;
        let Report::Creator(r) = &mut self.report else { unreachable!("creator import") };
        r.valid += valid.len() as u64;
        r.created += counts.created;
        r.updated += counts.updated;
        r.skipped += counts.skipped;
        r.invalid.extend(invalid);
        Ok(())
    }

    /// A creator row is refused when its `platform:handle` or one of its addresses came
    /// earlier in the file, or an address belongs to another creator; a valid row's keys
    /// are remembered.
    fn check_creator(
        &mut self,
        line: u64,
        c: &NewCreator,
        owners: &HashMap<String, (i64, String)>,
    ) -> Result<(), InvalidRow> {
        let me = format!("{}:{}", c.platform, c.handle).to_lowercase();
        let creator_key = format!("creator {me}");
        if let Some(first) = self.seen.get(&creator_key) {
            return Err(row_error(line, "handle", format!("{me} is on line {first} already")));
        }
        let addresses = c
            .emails
            .iter()
            .map(|a| ("email", a))
            .chain(c.manager_emails.iter().map(|a| ("manager_email", a)));
        let mut keys = vec![creator_key];
        for (field, a) in addresses {
            let key = format!("address {a}");
            if let Some(first) = self.seen.get(&key) {
                return Err(row_error(line, field, format!("{a} is on line {first} already")));
            }
            if keys.contains(&key) {
                return Err(row_error(line, field, format!("{a} is given twice")));
            }
            if let Some((id, owner)) = owners.get(a)
                && owner.to_lowercase() != me
            {
                return Err(row_error(
                    line,
                    field,
                    format!("{a} belongs to creator {owner} (id {id}) already"),
                ));
            }
            keys.push(key);
        }
        self.seen.extend(keys.into_iter().map(|k| (k, line)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_by_its_field() {
        let row = json!({"line": 3, "name": "Ana", "emails": ["a@x", "b\u{0}@x"]});
        assert_eq!(nul_field(&row, "").as_deref(), Some("emails[1]"));
        assert_eq!(nul_field(&json!({"name": "Ana"}), ""), None);
        let mut invalid = Vec::new();
        let kept = without_nul(vec![row, json!({"line": 4, "name": "Ben"})], &mut invalid);
        assert_eq!(kept.len(), 1);
        assert_eq!((invalid[0].line, invalid[0].field.as_deref()), (3, Some("emails[1]")));
    }
}
