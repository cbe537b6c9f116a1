//! sd_notify: READY, STATUS, WATCHDOG and STOPPING reach the socket systemd would own.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A datagram socket where systemd would listen, bound before the daemon starts (in a
/// directory of its own: the config directory does not exist yet); keep the directory.
fn notify_socket() -> (tempfile::TempDir, UnixDatagram, String) {
    let dir = tempfile::Builder::new().prefix("collabd-notify").tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    (dir, sock, path.display().to_string())
}

#[tokio::test]
async fn ready_status_watchdog_and_stopping_arrive_in_order() {
    let (_dir, sock, sock_path) = notify_socket();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Not waiting for the admin socket: READY=1 must come only once it is up.
    let vars = [("NOTIFY_SOCKET", sock_path.as_str()), ("WATCHDOG_USEC", "1000000")];
    let mut app = spawn_app(AppOptions::default().env(&vars).no_wait()).await;
    let (env, daemon) = (&app.env, &mut app.daemon);

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while seen.iter().filter(|l: &&String| l.as_str() == "WATCHDOG=1").count() < 2 {
        assert!(Instant::now() < deadline, "got only {seen:?}\n{}", daemon.logs());
        let n = sock.recv(&mut buf).unwrap();
        seen.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned));
    }
    assert_eq!(seen[0], "READY=1", "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("STATUS=1 mailboxes")), "{seen:?}");
    // Ready only once the admin socket is up.
    assert!(env.path("admin.sock").exists());

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1\n{}", daemon.logs());
    assert!(daemon.wait(Duration::from_secs(10)).success());
}

/// Reads notify datagrams until `until` matches one of their lines or `limit` passes.
fn read_until(sock: &UnixDatagram, limit: Duration, until: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let lines: Vec<String> =
                String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned).collect();
            let hit = lines.iter().any(|l| until(l));
            seen.extend(lines);
            if hit {
                break;
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_watchdog_stops_while_a_mailbox_loop_is_wedged_and_reload_is_announced() {
    let (_dir, sock, sock_path) = notify_socket();
    // No statement timeout: a stuck lock wedges the loop for real.
    let vars = [
        ("NOTIFY_SOCKET", sock_path.as_str()),
        ("WATCHDOG_USEC", "1000000"),
        ("COLLABD__DATABASE__STATEMENT_TIMEOUT", "0s"),
    ];
    let options = AppOptions::default().brand(|mb| mb.timeout = "1s".into()).env(&vars);
    let app = spawn_app(options.no_wait()).await;
    let (db, daemon) = (&app.db, &app.daemon);
    let seen = read_until(&sock, Duration::from_secs(20), |l| l == "WATCHDOG=1");
    assert!(seen.contains(&"READY=1".to_string()), "{seen:?}\n{}", daemon.logs());

    // Reload is bracketed by RELOADING=1 and READY=1.
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let seen = read_until(&sock, Duration::from_secs(10), |l| l == "READY=1");
    let reloading = seen.iter().position(|l| l == "RELOADING=1");
    let ready = seen.iter().position(|l| l == "READY=1");
    assert!(matches!((reloading, ready), (Some(a), Some(b)) if a < b), "{seen:?}");

    // Hold a lock the worker's next catch-up needs.
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE mailbox_sync IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen = read_until(&sock, Duration::from_secs(20), |l| l.contains("WEDGED"));
    assert!(seen.iter().any(|l| l.contains("WEDGED: brand")), "{seen:?}\n{}", daemon.logs());
    let quiet = read_until(&sock, Duration::from_secs(2), |l| l == "WATCHDOG=1");
    assert!(!quiet.contains(&"WATCHDOG=1".to_string()), "fed while wedged: {quiet:?}");
    assert!(daemon.logs().contains("mailbox loop wedged"));

    tx.rollback().await.unwrap();
    let seen = read_until(&sock, Duration::from_secs(15), |l| l == "WATCHDOG=1");
    assert!(seen.contains(&"WATCHDOG=1".to_string()), "watchdog resumes: {seen:?}");
}

#[tokio::test]
async fn under_journald_lines_carry_priorities_and_no_timestamps() {
    let no_mailbox = AppOptions { dovecot: false, ..AppOptions::default() };
    let mut app = spawn_app(no_mailbox.env(&[("JOURNAL_STREAM", "8:12345")])).await;
    let (status, _) = app.daemon.terminate();
    assert!(status.success(), "{status}\n{}", app.logs());
    let logs = app.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.starts_with("<6>")
                || l.starts_with("<4>")
                || l.starts_with("<3>")
                || l.starts_with("<7>"),
            "{l}"
        );
        assert!(!l.contains("2026-") || l.contains("created_at"), "no timestamp of our own: {l}");
    }
    assert!(lines.iter().any(|l| l.starts_with("<6>") && l.contains("collabd started")), "{logs}");
}
