//! CSV imports (`collabctl creator import`, `collabctl outreach import`): reading the file,
//! checking every row, parsing dates, and the all-or-nothing protocol with the daemon.
//!
//! An import is all or nothing across the whole file: the rows are checked locally
//! (columns, dates, NUL, size), then travel in chunks of at most [`CHUNK`] rows and
//! [`CHUNK_BYTES`] bytes on one connection, where the daemon checks and writes them in one
//! transaction that commits with the last chunk, or not at all. Writes are idempotent
//! (creators are upserted, outreach is keyed on its Message-ID), so importing a file again
//! changes nothing.

use std::io::{IsTerminal, Write as _};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use collabd::admin::display;
use collabd::admin::protocol::ImportChunk;
use collabd::dates::parse_time;

use crate::Cli;
use crate::render::{print_report, render_invalid};

/// Rows per request at most.
pub const CHUNK: usize = 1000;

/// Bytes of rows per request at most, well under the admin socket's 1 MiB request limit
/// (`admin::protocol::MAX_LINE`) whatever the rows hold.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Longest row (as the JSON it travels in); longer ones are refused by their line.
pub const MAX_ROW_BYTES: usize = 256 * 1024;

/// Files with more rows than this show progress on a terminal.
pub const PROGRESS_ROWS: usize = 10_000;

/// Exit status when `--skip-invalid` left rows out.
pub const EXIT_SKIPPED: u8 = 2;

/// How an import treats invalid rows.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Check every row (including creators and campaigns they name) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the valid rows and list the others (exit status 2 when any were skipped).
    /// Without it, one invalid row means nothing is imported.
    #[arg(long, conflicts_with = "dry_run")]
    pub skip_invalid: bool,
}

/// What is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Creator,
    Outreach,
}

impl Kind {
    fn required_columns(self) -> &'static [&'static str] {
        match self {
            Kind::Creator => &["name", "platform", "handle"],
            Kind::Outreach => &["message_id", "campaign", "platform", "handle", "to"],
        }
    }
}

/// The result of an import: the report to show and the process's exit status.
#[derive(Debug)]
pub struct Outcome {
    /// The whole report, for `--json`.
    pub report: Value,
    /// Its counts by name (`created`, `recorded`, `valid`, …), for people.
    pub counts: Vec<(String, u64)>,
    /// Every refused row, by line.
    pub invalid: Vec<collabd::admin::protocol::InvalidRow>,
    pub exit: u8,
    /// What went wrong, for stderr; `None` when every row was fine.
    pub summary: Option<String>,
}

/// A row the file or the daemon refused, by its line in the file (the header is line 1).
fn problem(line: u64, field: Option<&str>, reason: impl Into<String>) -> Value {
    json!({ "line": line, "field": field, "reason": reason.into() })
}

/// Reads a CSV file into request rows (each with its `line`) and the lines refused locally.
pub fn read(file: &Path, kind: Kind) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = rdr.headers().with_context(|| format!("{}: line 1", file.display()))?.clone();
    for name in kind.required_columns() {
        if !headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            bail!("{}: the header (line 1) has no column {name}", file.display());
        }
    }
    let (mut rows, mut invalid) = (Vec::new(), Vec::new());
    for rec in rdr.records() {
        match rec {
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                invalid.push(problem(line, None, e.to_string()));
            }
            Ok(rec) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                if let Some(i) = rec.iter().position(|cell| cell.contains('\0')) {
                    let field = headers.get(i).unwrap_or("?");
                    invalid.push(problem(line, Some(field), "must not contain NUL (U+0000)"));
                    continue;
                }
                let row = match kind {
                    Kind::Creator => creator_row(&headers, &rec),
                    Kind::Outreach => outreach_row(&headers, &rec),
                };
                match row {
                    Ok(mut row) => {
                        row["line"] = json!(line);
                        rows.push(row);
                    }
                    Err((field, reason)) => invalid.push(problem(line, Some(field), reason)),
                }
            }
        }
    }
    Ok((rows, invalid))
}

type RowError = (&'static str, String);

fn column<'a>(h: &csv::StringRecord, r: &'a csv::StringRecord, name: &str) -> Option<&'a str> {
    h.iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .and_then(|i| r.get(i))
        .filter(|v| !v.is_empty())
}

fn required<'a>(
    h: &csv::StringRecord,
    r: &'a csv::StringRecord,
    name: &'static str,
) -> Result<&'a str, RowError> {
    column(h, r, name).ok_or_else(|| (name, "is empty or missing".to_owned()))
}

fn creator_row(h: &csv::StringRecord, r: &csv::StringRecord) -> Result<Value, RowError> {
    let list = |name: &str| -> Vec<&str> {
        column(h, r, name).map(|v| v.split(';').map(str::trim).collect()).unwrap_or_default()
    };
    Ok(json!({
        "name": required(h, r, "name")?,
        "platform": required(h, r, "platform")?,
        "handle": required(h, r, "handle")?,
        "emails": list("email"),
        "manager_emails": list("manager_email"),
        "tags": list("tags"),
    }))
}

fn outreach_row(h: &csv::StringRecord, r: &csv::StringRecord) -> Result<Value, RowError> {
    let sent_at = column(h, r, "sent_at")
        .map(|s| parse_time(s).map(|d| d.to_rfc3339()).map_err(|e| ("sent_at", e)))
        .transpose()?;
    Ok(json!({
        "message_id": required(h, r, "message_id")?,
        "campaign": required(h, r, "campaign")?,
        "creator": format!("{}:{}", required(h, r, "platform")?, required(h, r, "handle")?),
        "to": required(h, r, "to")?,
        "subject": column(h, r, "subject").unwrap_or_default(),
        "sent_at": sent_at,
        // Optional: the mailbox it was sent from; empty or absent is unknown.
        "mailbox": column(h, r, "mailbox"),
    }))
}

/// Whether to show progress: only for a person watching a big file go.
pub fn shows_progress(rows: usize, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && rows > PROGRESS_ROWS
}

struct Progress {
    on: bool,
    total: usize,
}

impl Progress {
    fn show(&self, what: &str, done: usize) {
        if self.on {
            eprint!("\r{what} {done}/{} rows", self.total);
            if done >= self.total {
                eprintln!();
            }
        }
    }
}

/// Splits rows into chunks of at most [`CHUNK`] rows and [`CHUNK_BYTES`] bytes of JSON;
/// a row over [`MAX_ROW_BYTES`] is refused by its line instead.
fn chunks(rows: Vec<Value>, invalid: &mut Vec<Value>) -> Vec<Vec<Value>> {
    let mut chunks = vec![Vec::new()];
    let mut bytes = 0;
    for row in rows {
        let size = serde_json::to_string(&row).map_or(usize::MAX, |s| s.len());
        if size > MAX_ROW_BYTES {
            let line = row["line"].as_u64().unwrap_or(0);
            let reason = format!("the row is {size} bytes; at most {MAX_ROW_BYTES}");
            invalid.push(problem(line, None, reason));
            continue;
        }
        let last = chunks.last_mut().expect("one chunk at least");
        if !last.is_empty() && (last.len() == CHUNK || bytes + size > CHUNK_BYTES) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size + 1;
        chunks.last_mut().expect("one chunk at least").push(row);
    }
    chunks
}

/// Runs an import: reads and checks every row locally, then sends them in chunks on one
/// connection, where the daemon checks and writes them in one transaction (see
/// `collabd::admin` and [`ImportChunk`]). A row refused locally turns the import into a
/// dry run (unless `skip_invalid`), so the daemon's findings are listed too and nothing is
/// written. `call` sends one chunk and answers the daemon's report of the import so far.
pub fn run(
    file: &Path,
    kind: Kind,
    opts: ImportOptions,
    call: &mut dyn FnMut(Vec<Value>, ImportChunk) -> anyhow::Result<Value>,
) -> anyhow::Result<Outcome> {
    let (rows, mut invalid) = read(file, kind)?;
    let total = rows.len();
    let progress = Progress { on: shows_progress(total, std::io::stderr().is_terminal()), total };
    let chunks = chunks(rows, &mut invalid);
    let dry_run = opts.dry_run || (!invalid.is_empty() && !opts.skip_invalid);
    let (last, mut sent, mut report) = (chunks.len() - 1, 0, Value::Null);
    for (i, chunk) in chunks.into_iter().enumerate() {
        sent += chunk.len();
        let flags = ImportChunk { dry_run, skip_invalid: opts.skip_invalid, more: i < last };
        report = call(chunk, flags)?;
        progress.show("sent", sent);
    }
    if let Some(theirs) = report.get("invalid").and_then(Value::as_array) {
        invalid.extend(theirs.iter().cloned());
    }
    invalid.sort_by_key(|v| v["line"].as_u64());
    report["invalid"] = Value::Array(invalid.clone());
    let committed = report["committed"].as_bool().unwrap_or(false);
    let n = invalid.len();
    let lines: Vec<String> = invalid.iter().map(|v| v["line"].to_string()).collect();
    let lines = lines.join(", ");
    let summary = match (n, committed) {
        (0, _) => None,
        (_, true) => Some(format!("{n} invalid row(s) skipped, on line(s) {lines}")),
        (_, false) => {
            let what =
                if opts.dry_run { "dry run" } else { "use --skip-invalid to import the rest" };
            Some(format!("{n} invalid row(s) on line(s) {lines}; nothing imported ({what})"))
        }
    };
    let names: &[&str] = match (opts.dry_run, kind) {
        (true, _) => &["valid"],
        (false, Kind::Creator) => &["created", "updated", "skipped"],
        (false, Kind::Outreach) => &["recorded", "skipped"],
    };
    let counts = names.iter().map(|k| (k.to_string(), report[k].as_u64().unwrap_or(0))).collect();
    if opts.dry_run {
        report["dry_run"] = Value::Bool(true);
    }
    let exit = match (n, committed) {
        (0, _) => 0,
        (_, true) => EXIT_SKIPPED,
        (_, false) => 1,
    };
    Ok(Outcome { report, counts, invalid: typed(invalid)?, exit, summary })
}

/// The refused rows as the protocol's type.
fn typed(invalid: Vec<Value>) -> anyhow::Result<Vec<collabd::admin::protocol::InvalidRow>> {
    invalid.into_iter().map(|v| Ok(serde_json::from_value(v)?)).collect()
}

/// Runs a CSV import (see above), prints its report, and ends the process with
/// its status: 1 when invalid rows stopped it, 2 when `--skip-invalid` left rows out.
pub(crate) fn import_file(
    cli: &Cli,
    file: &std::path::Path,
    kind: Kind,
    opts: ImportOptions,
    call: &mut dyn FnMut(Vec<Value>, ImportChunk) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let outcome = run(file, kind, opts, call)?;
    print_report(cli, &outcome.report, |_| {
        let mut out = String::new();
        for (name, n) in &outcome.counts {
            out += &format!("{name}: {n}\n");
        }
        out + &render_invalid(&outcome.invalid)
    })?;
    if let Some(s) = &outcome.summary {
        eprintln!("collabctl: {}", display::text(s));
    }
    if outcome.exit != 0 {
        std::io::stdout().flush()?;
        std::process::exit(i32::from(outcome.exit));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_only_for_big_files_on_a_terminal() {
        assert!(shows_progress(10_001, true));
        assert!(!shows_progress(10_000, true));
        assert!(!shows_progress(50_000, false));
    }

    #[test]
    fn rows_carry_their_line_and_bad_ones_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o.csv");
        std::fs::write(
            &f,
            "message_id,campaign,platform,handle,to,subject,sent_at\n\
             <a@x>,C,tiktok,ana,ana@x.example,\"two\nlines\",Sun, 15 Nov 2026 16:59:12 GMT\n\
             <b@x>,C,tiktok,ben,ben@x.example,Hi,\"Sun, 15 Nov 2026 16:59:12 GMT\"\n\
             <c@x>,C,tiktok,,c@x.example,Hi,2026-11-15\n\
             <d@x>,C,tiktok,dan,d@x.example,Hi,not a date\n",
        )
        .unwrap();
        let (rows, invalid) = read(&f, Kind::Outreach).unwrap();
        // Line 2's unquoted date splits at its comma: the zone lands in an extra column
        // and sent_at holds just the weekday.
        let lines: Vec<_> =
            invalid.iter().map(|v| (v["line"].clone(), v["field"].clone())).collect();
        assert_eq!(
            lines,
            vec![
                (json!(2), json!("sent_at")),
                (json!(5), json!("handle")),
                (json!(6), json!("sent_at"))
            ]
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["line"], 4);
        assert_eq!(rows[0]["sent_at"], "2026-11-15T16:59:12+00:00");
    }

    #[test]
    fn a_header_without_a_required_column_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.csv");
        std::fs::write(&f, "name,handle\nAna,ana\n").unwrap();
        let e = read(&f, Kind::Creator).unwrap_err().to_string();
        assert!(e.contains("no column platform"), "{e}");
    }
}
