//! A private Dovecot IMAP server per test: plain login, the OAuth2 variant that checks
//! bearer tokens against the fake token server, and delivery straight into its maildir.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use super::{
    BRAND, OAuthServer, PASSWORD, SaslResponse, free_port, oauthbearer_payload, xoauth2_payload,
};

/// A private Dovecot IMAP server with its own maildir, for one test.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Dovecot {
    /// Starts Dovecot with the brand mailbox user.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Starts Dovecot with extra lines in its configuration.
    pub fn start_with(extra_conf: &str) -> Dovecot {
        let dir = tempfile::Builder::new().prefix("collabd-dovecot").tempdir().unwrap();
        Dovecot::start_in(dir, extra_conf)
    }

    /// Starts Dovecot in `dir`, which may already hold files `extra_conf` names.
    fn start_in(dir: tempfile::TempDir, extra_conf: &str) -> Dovecot {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let d = Dovecot { dir, port };
        std::fs::write(d.path("passwd"), format!("{BRAND}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        std::fs::create_dir_all(d.path("mail")).unwrap();
        std::fs::create_dir_all(d.path("run")).unwrap();
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(d.path("mail"))
            .status()
            .unwrap();
        assert!(status.success());
        let root = d.dir.path().display();
        std::fs::write(
            d.path("dovecot.conf"),
            format!(
                r#"base_dir = {root}/run
log_path = {root}/dovecot.log
instance_name = collabd-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{root}/mail/%u/maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
{extra_conf}
"#
            ),
        )
        .unwrap();
        d.launch();
        d
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn launch(&self) {
        let status = Command::new("/usr/sbin/dovecot")
            .arg("-c")
            .arg(self.path("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("dovecot binary (apt-get install dovecot-imapd)");
        assert!(status.success(), "dovecot failed to start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM to its master process) and waits until it is gone.
    pub fn stop(&self) {
        // A master whose pid file is gone (or not yet written) is found by its config.
        let conf = self.path("dovecot.conf");
        let _ = Command::new("pkill")
            .args(["-TERM", "-f", &format!("dovecot -c {}", conf.display())])
            .status();
        let pid = std::fs::read_to_string(self.path("run/master.pid")).unwrap_or_default();
        let Ok(pid) = pid.trim().parse::<i32>() else { return };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::kill(pid, None).is_ok() {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Client sessions outlive the master; an outage takes them down too.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("collabd-test-{}/", self.port)])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&self) {
        self.launch();
    }

    /// Opens an IMAP session as the brand user.
    pub async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client.login(BRAND, PASSWORD).await.map_err(|(e, _)| e).unwrap()
    }

    /// APPENDs messages to a folder over IMAP, as a mail delivery would.
    pub async fn append_all(&self, folder: &str, messages: &[Vec<u8>]) {
        let mut s = self.session().await;
        for m in messages {
            s.append(folder, None, None, m).await.unwrap();
        }
        s.logout().await.unwrap();
    }

    pub async fn append(&self, message: Vec<u8>) {
        self.append_all("INBOX", &[message]).await;
    }

    /// Creates a folder over IMAP.
    pub async fn create_folder(&self, name: &str) {
        let mut s = self.session().await;
        s.create(name).await.unwrap();
        s.logout().await.unwrap();
    }

    /// Deletes and recreates a folder: it comes back empty, with a new UIDVALIDITY.
    pub async fn recreate_folder(&self, name: &str) {
        let mut s = self.session().await;
        s.delete(name).await.unwrap();
        s.create(name).await.unwrap();
        s.logout().await.unwrap();
    }

    /// UIDVALIDITY of a folder as the server reports it.
    pub async fn uidvalidity(&self, folder: &str) -> u32 {
        let mut s = self.session().await;
        let mb = s.examine(folder).await.unwrap();
        s.logout().await.unwrap();
        mb.uid_validity.unwrap()
    }

    /// The flags of every message, to prove collabd never marks mail as read.
    pub async fn seen_count(&self) -> usize {
        let mut s = self.session().await;
        s.examine("INBOX").await.unwrap();
        let fetches: Vec<_> =
            s.fetch("1:*", "FLAGS").await.unwrap().try_collect().await.unwrap_or_default();
        let seen = fetches
            .iter()
            .filter(|f| f.flags().any(|fl| matches!(fl, async_imap::types::Flag::Seen)))
            .count();
        s.logout().await.unwrap();
        seen
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
impl Dovecot {
    /// Delivers a message by dropping it into the brand user's maildir, as a local
    /// delivery agent would: works while the IMAP server is down.
    pub fn deliver_to_maildir(&self, name: &str, message: &[u8]) {
        let dir = self.path(&format!("mail/{BRAND}/maildir"));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let tmp = dir.join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        let new = dir.join("new").join(name);
        std::fs::rename(&tmp, &new).unwrap();
        let status =
            Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status().unwrap();
        assert!(status.success());
    }
}
impl Dovecot {
    /// Dovecot that also takes SASL XOAUTH2 and OAUTHBEARER, checking each bearer token
    /// with `oauth`'s /introspect at login (PLAIN with [`PASSWORD`] keeps working).
    /// Failed logins are answered at once: no failure delay, no per-IP penalty.
    pub fn start_oauth(oauth: &OAuthServer) -> Dovecot {
        let dir = tempfile::Builder::new().prefix("collabd-dovecot").tempdir().unwrap();
        let args = dir.path().join("oauth2.conf");
        std::fs::write(
            &args,
            format!(
                "introspection_url = {}\nintrospection_mode = post\nforce_introspection = yes\n\
                 username_attribute = username\nactive_attribute = active\nactive_value = true\n",
                oauth.url("/introspect")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&args, std::fs::Permissions::from_mode(0o644)).unwrap();
        let extra = format!(
            r#"auth_mechanisms = plain xoauth2 oauthbearer
auth_failure_delay = 0
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
            args.display()
        );
        Dovecot::start_in(dir, &extra)
    }

    /// Ends every IMAP session of `user` (`doveadm kick`), as a server does when it
    /// re-checks a token; the client must log in again.
    pub fn kick(&self, user: &str) {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.path("dovecot.conf"))
            .args(["kick", user])
            .output()
            .expect("doveadm");
        // doveadm exits non-zero when there was no session to kick: that is fine here.
        assert!(
            out.status.success() || out.status.code() == Some(68),
            "doveadm kick {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Logs in with SASL `mechanism` ("XOAUTH2" or "OAUTHBEARER") and a bearer token.
    pub async fn oauth_session(
        &self,
        mechanism: &str,
        user: &str,
        token: &str,
    ) -> Result<async_imap::Session<tokio::net::TcpStream>, async_imap::error::Error> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        let payload = match mechanism {
            "XOAUTH2" => xoauth2_payload(user, token),
            "OAUTHBEARER" => oauthbearer_payload(user, "127.0.0.1", self.port, token),
            other => panic!("no SASL mechanism {other}"),
        };
        client.authenticate(mechanism, SaslResponse(Some(payload))).await.map_err(|(e, _)| e)
    }
}
/// Dovecot settings for many sessions of the one test user: one collabd mailbox per
/// folder, several instances, and the sessions of killed instances not yet noticed.
pub const MANY_SESSIONS: &str = "default_process_limit = 500\ndefault_client_limit = 2000\n\
    protocol imap {\n  mail_max_userip_connections = 1000\n}\n";

impl Dovecot {
    /// Creates `folder` (a Maildir++ folder of the brand user) on disk.
    pub fn create_maildir_folder(&self, folder: &str) {
        let dir = self.path(&format!("mail/{BRAND}/maildir/.{folder}"));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("maildirfolder"), b"").unwrap();
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(self.path(&format!("mail/{BRAND}")))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Delivers into a folder made by [`Dovecot::create_maildir_folder`], as a local
    /// delivery agent would (tmp/, then a rename into new/). Readable by Dovecot without a
    /// chown: the file is world-readable and the folder's new/ is nobody's and writable.
    pub fn deliver_to_folder(&self, folder: &str, name: &str, message: &[u8]) {
        let dir = self.path(&format!("mail/{BRAND}/maildir/.{folder}"));
        let tmp = dir.join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::rename(&tmp, dir.join("new").join(name)).unwrap();
    }
}
