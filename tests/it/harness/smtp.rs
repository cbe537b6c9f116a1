//! SMTP sinks: Python's aiosmtpd storing what it receives in a Maildir, and the script
//! that also requires AUTH (XOAUTH2 against the fake token server, or PLAIN).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BRAND, OAuthServer, PASSWORD, free_port, read, spawn_reporting_port, support_script};

/// A real SMTP server (Python's aiosmtpd) that stores what it receives in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    pub mbox: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
    auth_log: PathBuf,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mbox = dir.path().join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&mbox)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let auth_log = dir.path().join("auth.log");
        SmtpSink { port, mbox, child, _dir: dir, auth_log }
    }

    /// Every message received so far, concatenated.
    pub fn received(&self) -> String {
        let mut all = String::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.mbox.join(sub)).into_iter().flatten().flatten() {
                all.push_str(&read(&entry.path()));
            }
        }
        all
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
impl SmtpSink {
    /// An SMTP sink that requires AUTH: XOAUTH2 with a token `oauth` calls active for
    /// that user, or PLAIN as [`BRAND`] / [`PASSWORD`]. Each attempt is a line of
    /// [`SmtpSink::auth_log`]; messages carry `X-Auth-User`.
    pub fn start_oauth(oauth: &OAuthServer) -> SmtpSink {
        SmtpSink::start_oauth_with(oauth, &[])
    }

    /// As [`SmtpSink::start_oauth`], with more flags for the script:
    /// `--google-errors` (a 334 JSON challenge before the 535, as Gmail does) or
    /// `--no-require-auth`.
    pub fn start_oauth_with(oauth: &OAuthServer, flags: &[&str]) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("maildir");
        let auth_log = dir.path().join("auth.log");
        let (child, port) = spawn_reporting_port(
            Command::new("python3")
                .arg(support_script("smtp_auth_sink.py"))
                .args(["--port", "0", "--maildir"])
                .arg(&mbox)
                .arg("--auth-log")
                .arg(&auth_log)
                .args(["--introspect", &oauth.url("/introspect")])
                .args(["--user", BRAND, "--password", PASSWORD])
                .args(flags),
            &dir.path().join("smtp.log"),
        );
        SmtpSink { port, mbox, child, _dir: dir, auth_log }
    }

    /// One line per AUTH attempt: `XOAUTH2 user=U accepted` or
    /// `PLAIN user=U rejected: REASON`.
    pub fn auth_log(&self) -> String {
        read(&self.auth_log)
    }
}
