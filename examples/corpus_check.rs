//! Checks the real-mail corpus without a database: for every file in
//! `tests/fixtures/corpus/*/expected.csv`, the kind parse + classify give, the bounce
//! severity (hard/soft) and the reply text.
//! Matching needs the database and is checked by `tests/it/fixtures.rs`.
//! `cargo run --example corpus_check [-- FOLDER...]`; prints each mismatch and the figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use collabd::mail::{ClassifyRules, classify::classify, parse};

#[derive(Debug, serde::Deserialize)]
struct Row {
    file: String,
    kind: String,
    match_rule: String,
    creator: String,
    campaign: String,
    bounce: String,
    source: String,
    reply_text: String,
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("expected.csv").exists())
            .collect();
        dirs.sort();
    }
    let rules = ClassifyRules {
        own_addresses: vec!["partners@brand.example".into(), "hello@brand.example".into()],
    };
    let (mut total, mut bad) = (0, 0);
    let mut by_source: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for dir in dirs {
        let mut rdr = csv::Reader::from_path(dir.join("expected.csv")).unwrap();
        for row in rdr.deserialize::<Row>() {
            let row = row.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            total += 1;
            let problems = check(&dir, &row, &rules);
            let entry = by_source.entry(format!("{} {}", row.kind, row.source)).or_default();
            entry.0 += 1;
            if !problems.is_empty() {
                bad += 1;
                entry.1 += 1;
                println!("✗ {}/{}", dir.file_name().unwrap().to_string_lossy(), row.file);
                for p in problems {
                    println!("    {p}");
                }
            }
        }
    }
    println!("\n{:<40} {:>6} {:>6}", "kind source", "files", "wrong");
    for (k, (n, w)) in &by_source {
        println!("{k:<40} {n:>6} {w:>6}");
    }
    println!("\n{total} files, {bad} with a mismatch");
}

fn check(dir: &Path, row: &Row, rules: &ClassifyRules) -> Vec<String> {
    let raw = match std::fs::read(dir.join(&row.file)) {
        Ok(raw) => raw,
        Err(e) => return vec![format!("cannot read: {e}")],
    };
    let mail = parse(&raw);
    let class = classify(&mail, rules);
    let mut problems = Vec::new();
    // `unmatched` is decided by matching, from a human kind.
    let got = match (row.kind.as_str(), class.kind.as_str()) {
        ("unmatched", "reply") => "unmatched",
        (_, k) => k,
    };
    if got != row.kind {
        problems.push(format!("kind: want {} got {} ({})", row.kind, got, class.reason));
    }
    if matches!(row.kind.as_str(), "reply" | "decline" | "unmatched")
        && !row.reply_text.is_empty()
        && norm(&mail.reply_text) != norm(&row.reply_text)
    {
        problems.push(format!(
            "reply_text:\n      want {:?}\n      got  {:?}",
            norm(&row.reply_text),
            norm(&mail.reply_text)
        ));
    }
    problems.extend(report_problems(row, &mail));
    let got_bounce = class.bounce.map(|b| b.as_str()).unwrap_or_default();
    if got_bounce != row.bounce {
        problems
            .push(format!("bounce: want {:?} got {:?} ({})", row.bounce, got_bounce, class.reason));
    }
    problems
}

/// The fixture world's outreach Message-IDs and pool addresses (see the corpus README).
const OUTREACH: &[(&str, &str, &str)] = &[
    ("ana.makes", "C1", "outreach-ana-c1@brand.example"),
    ("benbuilds", "C1", "outreach-ben-c1@brand.example"),
    ("chloe.m", "C1", "outreach-chloe-c1@brand.example"),
    ("danw", "C1", "outreach-dan-c1@brand.example"),
    ("danw", "C2", "outreach-dan-c2@brand.example"),
];
const POOL: &[(&str, &str)] = &[
    ("ana.makes", "ana@creators.example"),
    ("ana.makes", "mgr@talentco.example"),
    ("benbuilds", "ben.okafor@gmail.example"),
    ("chloe.m", "chloe@yahoo.example"),
    ("danw", "dan@outlook.example"),
    ("evecooks", "eve@icloud.example"),
];

/// What matching will need from a bounce or complaint: the outreach's Message-ID for
/// `reported_message_id`; the failed pool address and no outreach Message-ID for
/// `final_recipient`.
fn report_problems(row: &Row, mail: &collabd::mail::ParsedMail) -> Vec<String> {
    let s = &mail.signals;
    let ids = &s.reported_message_ids;
    let outreach_ids: Vec<&str> = OUTREACH.iter().map(|o| o.2).collect();
    let mut problems = Vec::new();
    match row.match_rule.as_str() {
        "reported_message_id" => {
            let want = OUTREACH
                .iter()
                .find(|o| o.0 == row.creator && o.1 == row.campaign)
                .map(|o| o.2)
                .unwrap_or_default();
            let first = ids.iter().find(|i| outreach_ids.contains(&i.as_str()));
            if first.map(String::as_str) != Some(want) {
                problems.push(format!("reported ids: want {want} first, got {ids:?}"));
            }
        }
        "final_recipient" => {
            if ids.iter().any(|i| outreach_ids.contains(&i.as_str())) {
                problems.push(format!("reported ids name an outreach: {ids:?}"));
            }
            let pool: Vec<&str> = POOL.iter().filter(|p| p.0 == row.creator).map(|p| p.1).collect();
            if !s.reported_recipients.iter().any(|r| pool.contains(&r.as_str())) {
                problems.push(format!(
                    "reported recipients: want one of {pool:?}, got {:?}",
                    s.reported_recipients
                ));
            }
        }
        "" if matches!(row.kind.as_str(), "bounce" | "complaint") => {
            let pool: Vec<&str> = POOL.iter().map(|p| p.1).collect();
            // Complaints are matched by the reported Message-ID only.
            if ids.iter().any(|i| outreach_ids.contains(&i.as_str()))
                || (row.kind == "bounce"
                    && s.reported_recipients.iter().any(|r| pool.contains(&r.as_str())))
            {
                problems.push(format!(
                    "matches although it should not: {ids:?} {:?}",
                    s.reported_recipients
                ));
            }
        }
        _ => {}
    }
    problems
}
