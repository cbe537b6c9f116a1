//! sd_notify: READY, STATUS, WATCHDOG and STOPPING reach the socket systemd would own.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn ready_status_watchdog_and_stopping_arrive_in_order() {
    let db = TestDb::new().await;
    let imap = Dovecot::start();
    let env = DaemonEnv::new(&db.url);
    env.write_config(&[env.mailbox("brand", imap.port)], "");
    let sock_path = env.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut daemon = env.spawn_with_env(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "1000000"),
    ]);

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
