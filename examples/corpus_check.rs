//! Checks the real-mail corpus without a database: for every file in
//! `tests/fixtures/corpus/*/expected.csv`, the kind parse + classify give and the reply text.
//! Matching needs the database and is checked by `tests/fixtures.rs`.
//! `cargo run --example corpus_check [-- FOLDER...]`; prints each mismatch and the figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use collabd::mail::{ClassifyRules, classify::classify, parse};

#[derive(Debug, serde::Deserialize)]
struct Row {
    file: String,
    kind: String,
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
    let _ = &row.bounce; // checked once bounces carry a severity
    problems
}
