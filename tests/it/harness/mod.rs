//! Shared test harness, one file per concern: a fresh Postgres database per test
//! ([`pg`]), a private Dovecot per test on a free port ([`dovecot`]), SMTP sinks
//! ([`smtp`]), the fake OAuth2 token server ([`oauth`]), a scripted IMAP server
//! ([`scripted_imap`]), relays ([`net`]), the real `collabd` binary as a child process
//! ([`daemon`]), test mail ([`mail`]), and on top of them all [`spawn_app`], one daemon
//! ready to use ([`app`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod app;
mod daemon;
mod dovecot;
mod mail;
mod net;
mod oauth;
mod pg;
mod scripted_imap;
mod smtp;

pub use app::*;
pub use daemon::*;
pub use dovecot::*;
pub use mail::*;
pub use net::*;
pub use oauth::*;
pub use pg::*;
pub use scripted_imap::*;
pub use smtp::*;

pub const BRAND: &str = "partners@brand.example";
pub const PASSWORD: &str = "s3cret-pass";

/// The admin URL of the test cluster (`scripts/test` starts one and exports it).
/// Held by the tests that load the machine most (several daemons, dozens of sessions) and
/// by those that measure a latency: no two of them run at once, whatever the test threads.
/// Before the tests were one crate, each file was its own binary and such tests never met.
pub async fn one_heavy_test_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

pub fn admin_url() -> String {
    std::env::var("COLLABD_TEST_PG").or_else(|_| std::env::var("DATABASE_URL")).expect(
        "COLLABD_TEST_PG (or DATABASE_URL) must point at a Postgres superuser; run ./scripts/test",
    )
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A script under `tests/support/`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support").join(name)
}

/// Starts a support script that prints `PORT n` as its first line; returns it and `n`.
/// Its stderr goes to `log`.
fn spawn_reporting_port(cmd: &mut Command, log: &Path) -> (Child, u16) {
    let err = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("python3 (3.11) with aiosmtpd");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout);
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        let _ = tx.send(first);
        // Keep draining so that a later print never fails on a closed pipe.
        let _ = std::io::copy(&mut lines, &mut std::io::sink());
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let Some(port) = first.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not report its port (got {first:?}):\n{}", read(log));
    };
    (child, port)
}
