//! CPU per message of understanding mail: parse (with quote stripping) and classify every
//! `.eml` under the given folders, many times over, and print the best round's cost in
//! microseconds per message. `bench/run --classify` runs it on the fixtures and corpus.

use std::path::{Path, PathBuf};
use std::time::Instant;

use collabd::mail::{ClassifyRules, classify::classify, parse};

fn emls(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            emls(&path, out);
        } else if path.extension().is_some_and(|e| e == "eml") {
            out.push(path);
        }
    }
}

fn main() {
    let mut files = Vec::new();
    for dir in std::env::args().skip(1) {
        emls(Path::new(&dir), &mut files);
    }
    files.sort();
    let mails: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!mails.is_empty(), "usage: classify_cost FOLDER...");
    let rules = ClassifyRules { own_addresses: vec!["partners@brand.example".into()] };
    let reps = 20_000 / mails.len() + 1;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut kinds = 0usize;
        for _ in 0..reps {
            for raw in &mails {
                let mail = parse(raw);
                kinds += classify(&mail, &rules).kind as usize;
            }
        }
        std::hint::black_box(kinds);
        let per = start.elapsed().as_secs_f64() * 1e6 / (reps * mails.len()) as f64;
        best = best.min(per);
    }
    println!("{} {best:.1}", mails.len());
}
