//! What a runtime mailbox (`collabctl mailbox add`, stored in Postgres) may make the daemon
//! do with secrets. Members of `[admin] group` add those mailboxes, but they are not meant
//! to hold the daemon's secrets (other mailboxes' passwords, `[secrets] key_file`, whatever
//! `$CREDENTIALS_DIRECTORY` or the daemon's environment holds). So, for a runtime mailbox
//! and its `smtp` identity:
//!
//! - its password comes in the request (`password`, `smtp.password`: read by collabctl
//!   with the operator's own permissions) and is stored sealed with `[secrets] key_file`;
//! - a `password_file` (or an `oauth2` `client_secret_file`/`refresh_token_file`) must lie
//!   inside `[admin] credentials_dir`, after resolving `..` and symlinks; relative names
//!   resolve there;
//! - a `password_env` (or `oauth2` `*_env`) must start with `[admin] password_env_prefix`;
//! - `tls = "none"` (a password in clear) only to a loopback host, and `oauth2` endpoints
//!   over `https` (plain `http` only to a loopback host).
//!
//! `[[mailboxes]]` of the file are root's and keep their behaviour. The same rules are
//! applied when the daemon loads a stored mailbox, so a row written before them (or by
//! hand) cannot escape them either. Also here: the warning about secret files that group
//! or others can read ([`exposed_secret_files`]).

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::config::{
    AdminSettings, ConfigError, MailboxSettings, OAuth2Settings, Settings, SmtpSettings, TlsMode,
};

fn refuse(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), reason: reason.into() }
}

/// Whether `host` is this machine's loopback: `localhost`, 127.0.0.0/8 or ::1 (also
/// bracketed, and IPv4-mapped). Names that merely resolve there do not count: what they
/// resolve to is not the request's to decide.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// `file` resolved inside `dir`: relative names are joined to it; `..` is refused, and so
/// is an absolute path elsewhere, before anything is looked up; then both are
/// canonicalised and a symlink leading out is refused. Answers the canonical path.
pub fn inside_dir(dir: &Path, file: &Path) -> Result<PathBuf, String> {
    if file.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{}: `..` is not allowed", file.display()));
    }
    let canonical_dir = dir
        .canonicalize()
        .map_err(|e| format!("[admin] credentials_dir {}: {e}", dir.display()))?;
    let joined = dir.join(file);
    // Lexically first: a path elsewhere is never even looked at.
    if !joined.starts_with(dir) && !joined.starts_with(&canonical_dir) {
        return Err(format!(
            "{} is outside [admin] credentials_dir ({})",
            file.display(),
            dir.display()
        ));
    }
    let real = joined.canonicalize().map_err(|e| format!("{}: {e}", joined.display()))?;
    if real == canonical_dir {
        return Err(format!("{}: names the directory itself, not a file", file.display()));
    }
    if !real.starts_with(&canonical_dir) {
        return Err(format!(
            "{} leads outside [admin] credentials_dir ({}) through a symlink",
            file.display(),
            dir.display()
        ));
    }
    Ok(real)
}

/// The rules for the secret keys of one login; `prefix` names them (`smtp.`).
struct Rules<'a> {
    admin: &'a AdminSettings,
    prefix: &'a str,
}

impl Rules<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    /// A file key: resolved inside `credentials_dir` (the canonical path replaces it).
    fn file(&self, k: &str, file: &mut Option<PathBuf>) -> Result<(), ConfigError> {
        let Some(f) = file.as_ref() else { return Ok(()) };
        let Some(dir) = &self.admin.credentials_dir else {
            return Err(refuse(
                &self.key(k),
                "a mailbox added at run time may name a file only inside [admin] \
                 credentials_dir, and none is configured: send the secret in the request \
                 (collabctl reads --password-file itself)",
            ));
        };
        *file = Some(inside_dir(dir, f).map_err(|e| refuse(&self.key(k), e))?);
        Ok(())
    }

    /// An environment key: only with `[admin] password_env_prefix`.
    fn env(&self, k: &str, var: Option<&str>) -> Result<(), ConfigError> {
        let Some(var) = var else { return Ok(()) };
        match self.admin.password_env_prefix.as_deref() {
            Some(p) if !p.is_empty() && var.starts_with(p) && var.len() > p.len() => Ok(()),
            Some(p) => Err(refuse(
                &self.key(k),
                format!(
                    "{var}: a mailbox added at run time may name only variables starting with {p} ([admin] password_env_prefix)"
                ),
            )),
            None => Err(refuse(
                &self.key(k),
                "a mailbox added at run time may name no environment variable of the daemon \
                 ([admin] password_env_prefix is not set): send the secret in the request",
            )),
        }
    }

    /// A password in clear goes only to this machine.
    fn tls(&self, tls: TlsMode, host: &str) -> Result<(), ConfigError> {
        if tls == TlsMode::None && !is_loopback_host(host) {
            return Err(refuse(
                &self.key("tls"),
                format!(
                    "tls = \"none\" only to a loopback host (127.0.0.0/8, ::1, localhost), \
                     not {host:?}: use implicit or starttls"
                ),
            ));
        }
        Ok(())
    }

    fn oauth2(&self, o: &mut OAuth2Settings) -> Result<(), ConfigError> {
        let section = format!("{}oauth2.", self.prefix);
        let inner = Rules { admin: self.admin, prefix: &section };
        inner.file("client_secret_file", &mut o.client_secret_file)?;
        inner.file("refresh_token_file", &mut o.refresh_token_file)?;
        inner.env("client_secret_env", o.client_secret_env.as_deref())?;
        inner.env("refresh_token_env", o.refresh_token_env.as_deref())?;
        for (k, v) in
            [("token_url", &o.token_url), ("auth_url", &o.auth_url), ("device_url", &o.device_url)]
        {
            let Some(v) = v else { continue };
            let url =
                url::Url::parse(v).map_err(|e| refuse(&inner.key(k), format!("{v:?}: {e}")))?;
            let local = url.host_str().is_some_and(is_loopback_host);
            if url.scheme() != "https" && !(url.scheme() == "http" && local) {
                return Err(refuse(
                    &inner.key(k),
                    format!("{v:?}: https only (plain http only to a loopback host)"),
                ));
            }
        }
        Ok(())
    }

    fn smtp(&self, s: &mut SmtpSettings) -> Result<(), ConfigError> {
        self.tls(s.tls, &s.host)?;
        self.file("password_file", &mut s.password_file)?;
        self.env("password_env", s.password_env.as_deref())?;
        if let Some(o) = &mut s.oauth2 {
            self.oauth2(o)?;
        }
        Ok(())
    }
}

/// Checks a runtime mailbox against the rules above, before anything it names is read,
/// and answers it with its file keys resolved to their canonical paths inside
/// `credentials_dir` (what the daemon then reads). The key at fault is named relative to
/// the mailbox: `password_file`, `tls`, `smtp.password_env`, `oauth2.token_url`, …
pub fn confine_mailbox(
    mb: &MailboxSettings,
    admin: &AdminSettings,
) -> Result<MailboxSettings, ConfigError> {
    let mut mb = mb.clone();
    let rules = Rules { admin, prefix: "" };
    rules.tls(mb.tls, &mb.host)?;
    rules.file("password_file", &mut mb.password_file)?;
    rules.env("password_env", mb.password_env.as_deref())?;
    if let Some(o) = &mut mb.oauth2 {
        rules.oauth2(o)?;
    }
    if let Some(s) = &mut mb.smtp {
        Rules { admin, prefix: "smtp." }.smtp(s)?;
    }
    Ok(mb)
}

/// A secret file that group or others may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedFile {
    /// The key naming it (`mailboxes[0].password_file`, `admin.credentials_dir`).
    pub key: String,
    pub path: PathBuf,
    /// The permission bits (`0o644`).
    pub mode: u32,
}

impl std::fmt::Display for ExposedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} is readable by group or others (mode {:04o}): chmod go-rwx it",
            self.key,
            self.path.display(),
            self.mode
        )
    }
}

/// Every secret file the config names (passwords, OAuth2 secrets, `[secrets] key_file`)
/// and every file in `[admin] credentials_dir` that group or others may read. Files that
/// cannot be read are left to validation.
pub fn exposed_secret_files(settings: &Settings) -> Vec<ExposedFile> {
    use std::os::unix::fs::PermissionsExt;
    let mut named: Vec<(String, PathBuf)> = Vec::new();
    for (i, mb) in settings.mailboxes.iter().enumerate() {
        let section = format!("mailboxes[{i}]");
        named.extend(mb.password_file.clone().map(|p| (format!("{section}.password_file"), p)));
        oauth_files(&format!("{section}.oauth2"), mb.oauth2.as_ref(), &mut named);
        if let Some(s) = &mb.smtp {
            smtp_files(&format!("{section}.smtp"), s, &mut named);
        }
    }
    if let Some(s) = &settings.smtp {
        smtp_files("smtp", s, &mut named);
    }
    named.extend(settings.secrets.key_file.clone().map(|p| ("secrets.key_file".into(), p)));
    let mut files: Vec<(String, PathBuf)> =
        named.into_iter().map(|(k, p)| (k, crate::secrets::credential_path(&p))).collect();
    if let Some(dir) = &settings.admin.credentials_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut inside: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        inside.sort();
        files.extend(inside.into_iter().map(|p| ("admin.credentials_dir".to_owned(), p)));
    }
    files
        .into_iter()
        .filter_map(|(key, path)| {
            let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
            let mode = meta.permissions().mode() & 0o7777;
            (mode & 0o044 != 0).then_some(ExposedFile { key, path, mode })
        })
        .collect()
}

fn smtp_files(section: &str, s: &SmtpSettings, named: &mut Vec<(String, PathBuf)>) {
    named.extend(s.password_file.clone().map(|p| (format!("{section}.password_file"), p)));
    oauth_files(&format!("{section}.oauth2"), s.oauth2.as_ref(), named);
}

fn oauth_files(section: &str, o: Option<&OAuth2Settings>, named: &mut Vec<(String, PathBuf)>) {
    let Some(o) = o else { return };
    for (k, p) in [
        ("client_secret_file", &o.client_secret_file),
        ("refresh_token_file", &o.refresh_token_file),
    ] {
        named.extend(p.clone().map(|p| (format!("{section}.{k}"), p)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_only_those() {
        for h in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "192.0.2.1",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "imap.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "",
            "::ffff:192.0.2.1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn files_resolve_inside_the_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("creds");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("imap-a"), "pw").unwrap();
        std::fs::write(dir.join("sub/imap-b"), "pw").unwrap();
        std::fs::write(root.path().join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink(root.path().join("outside"), dir.join("link-out")).unwrap();
        std::os::unix::fs::symlink(dir.join("imap-a"), dir.join("link-in")).unwrap();
        let canonical = dir.canonicalize().unwrap();

        assert_eq!(inside_dir(&dir, Path::new("imap-a")).unwrap(), canonical.join("imap-a"));
        assert_eq!(
            inside_dir(&dir, &dir.join("sub/imap-b")).unwrap(),
            canonical.join("sub/imap-b")
        );
        assert_eq!(inside_dir(&dir, Path::new("link-in")).unwrap(), canonical.join("imap-a"));
        for (bad, why) in [
            (PathBuf::from("../outside"), "`..`"),
            (dir.join("sub/../../outside"), "`..`"),
            (root.path().join("outside"), "outside"),
            (PathBuf::from("/etc/passwd"), "outside"),
            (PathBuf::from("link-out"), "symlink"),
            (PathBuf::from("missing"), "No such file"),
            (PathBuf::from(""), "directory itself"),
        ] {
            let e = inside_dir(&dir, &bad).unwrap_err();
            assert!(e.contains(why), "{}: {e}", bad.display());
        }
    }

    /// A mailbox on `127.0.0.1` unless `extra` starts with its own `host = …` line.
    fn mailbox(extra: &str) -> MailboxSettings {
        let host = if extra.starts_with("host") { "" } else { "host = \"127.0.0.1\"\n" };
        let toml = format!("name = \"m\"\nusername = \"u\"\n{host}{extra}");
        config::Config::builder()
            .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn runtime_mailboxes_name_no_daemon_secrets_and_send_none_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "x").unwrap();
        let none = AdminSettings::default();
        let admin = AdminSettings {
            credentials_dir: Some(dir.path().to_path_buf()),
            password_env_prefix: Some("COLLABD_MAILBOX_".into()),
            ..AdminSettings::default()
        };
        let key = |extra: &str, admin: &AdminSettings| match confine_mailbox(&mailbox(extra), admin)
        {
            Ok(_) => "ok".to_owned(),
            Err(ConfigError::Invalid { key, .. }) => key,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(key("tls = \"none\"\npassword = \"p\"", &none), "ok");
        assert_eq!(key("host = \"192.0.2.1\"\ntls = \"none\"", &admin), "tls");
        assert_eq!(key("host = \"192.0.2.1\"\ntls = \"starttls\"", &admin), "ok");
        assert_eq!(key("password_file = \"pw\"", &none), "password_file");
        assert_eq!(key("password_file = \"pw\"", &admin), "ok");
        assert_eq!(key("password_file = \"/etc/passwd\"", &admin), "password_file");
        assert_eq!(key("password_env = \"HOME\"", &none), "password_env");
        assert_eq!(key("password_env = \"HOME\"", &admin), "password_env");
        assert_eq!(key("password_env = \"COLLABD_MAILBOX_\"", &admin), "password_env");
        assert_eq!(key("password_env = \"COLLABD_MAILBOX_A\"", &admin), "ok");
        let smtp = "[smtp]\nhost = \"192.0.2.1\"\nfrom = \"a@b.example\"\n";
        assert_eq!(key(&format!("{smtp}tls = \"none\""), &admin), "smtp.tls");
        assert_eq!(key(&format!("{smtp}password_file = \"/k\""), &admin), "smtp.password_file");
        assert_eq!(key(&format!("{smtp}password_env = \"PATH\""), &admin), "smtp.password_env");
        let oauth = "auth = \"xoauth2\"\n[oauth2]\nprovider = \"custom\"\nclient_id = \"c\"\n";
        assert_eq!(
            key(&format!("{oauth}token_url = \"http://192.0.2.1/t\""), &admin),
            "oauth2.token_url"
        );
        assert_eq!(key(&format!("{oauth}token_url = \"http://127.0.0.1:9/t\""), &admin), "ok");
        assert_eq!(
            key(
                &format!("{oauth}token_url = \"https://t.example\"\nclient_secret_file = \"/k\""),
                &admin
            ),
            "oauth2.client_secret_file"
        );
        assert_eq!(
            key(
                &format!("{oauth}token_url = \"https://t.example\"\nrefresh_token_env = \"PATH\""),
                &admin
            ),
            "oauth2.refresh_token_env"
        );
        // The file key comes back canonical, inside the directory.
        let mb = confine_mailbox(&mailbox("password_file = \"pw\""), &admin).unwrap();
        assert_eq!(mb.password_file, Some(dir.path().canonicalize().unwrap().join("pw")));
    }
}
