//! `collabctl mailbox …`: run-time mailboxes (their passwords read here, with the
//! operator's permissions) and OAuth2 authorization.

use crate::*;

#[derive(Subcommand)]
pub(crate) enum MailboxCmd {
    /// Get an OAuth2 grant for a mailbox (or, with --smtp, for sending): the device-code
    /// flow where the provider offers it (Microsoft), else authorization code + PKCE with a
    /// redirect to this machine (Google). The daemon stores the refresh token and retries
    /// the mailbox at once.
    Authorize {
        /// The mailbox's name in the configuration.
        #[arg(required_unless_present = "smtp")]
        name: Option<String>,
        /// Authorize the [smtp] login instead of a mailbox; with a name, that mailbox's
        /// own SMTP login (`[mailboxes.smtp]`).
        #[arg(long)]
        smtp: bool,
        /// `auto` (device where the provider offers it), `device` or `code`.
        #[arg(long, value_enum, default_value = "auto")]
        flow: Flow,
        /// Port of the loopback redirect for the code flow (0: any free one). Over SSH,
        /// pick one and forward it: `ssh -L PORT:127.0.0.1:PORT host`.
        #[arg(long, default_value_t = 0)]
        redirect_port: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 900)]
        wait: u64,
    },
    /// Add a mailbox to the database: the running daemon starts it within a second.
    /// Validated like a `[[mailboxes]]` entry; secrets are read by the daemon.
    Add(Box<MailboxAddArgs>),
    /// Every mailbox, from the file and from the database.
    List,
    /// One mailbox's settings.
    Show { name: String },
    /// Stop a database mailbox's worker (it stays stored).
    Pause { name: String },
    /// Start a paused mailbox again.
    Resume { name: String },
    /// Delete a database mailbox; its worker stops (mail and sync state stay).
    Remove { name: String },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("login").required(true).args(["password_file", "password_env", "daemon_password_file", "daemon_password_env", "oauth2"]))]
pub(crate) struct MailboxAddArgs {
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) host: String,
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// `implicit` (default), `starttls` or `none`.
    #[arg(long)]
    pub(crate) tls: Option<String>,
    #[arg(long)]
    pub(crate) username: String,
    /// File with the password, read here with your permissions and sent to the daemon,
    /// which stores it encrypted with `[secrets] key_file`.
    #[arg(long)]
    pub(crate) password_file: Option<PathBuf>,
    /// Environment variable (of collabctl's environment) holding the password; sent like
    /// --password-file's.
    #[arg(long)]
    pub(crate) password_env: Option<String>,
    /// A file the daemon reads itself: only inside its `[admin] credentials_dir`
    /// (relative names resolve there).
    #[arg(long)]
    pub(crate) daemon_password_file: Option<PathBuf>,
    /// A variable of the daemon's environment: only with a name starting with its
    /// `[admin] password_env_prefix`.
    #[arg(long)]
    pub(crate) daemon_password_env: Option<String>,
    /// TOML or JSON file with the `oauth2` table (provider, client_id, …).
    #[arg(long)]
    pub(crate) oauth2: Option<PathBuf>,
    /// `xoauth2` (default with --oauth2) or `oauthbearer`.
    #[arg(long)]
    pub(crate) auth: Option<String>,
    #[arg(long)]
    pub(crate) folder: Option<String>,
    /// A duration such as `60s` or `5m`.
    #[arg(long)]
    pub(crate) poll_interval: Option<String>,
    /// Use IMAP IDLE (default true).
    #[arg(long)]
    pub(crate) idle: Option<bool>,
    /// TOML or JSON file with the mailbox's own SMTP identity: the keys of `[smtp]`
    /// (host, port, tls, username, password_file, from, reply_to, …). Without it the
    /// mailbox sends through `[smtp]`. Its `password_file` (relative: to the TOML file)
    /// and `password_env` are read here and the password sent, as for --password-file;
    /// `daemon_password_file` and `daemon_password_env` are passed to the daemon as its
    /// `password_file` and `password_env`.
    #[arg(long)]
    pub(crate) smtp: Option<PathBuf>,
}

/// A TOML or JSON file holding a table (`[oauth2]`, `[smtp]`) or just its keys.
pub(crate) fn read_table(file: &std::path::Path, name: &str) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let table: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => {
            let toml = config::File::from_str(&text, config::FileFormat::Toml);
            config::Config::builder()
                .add_source(toml)
                .build()
                .and_then(|c| c.try_deserialize::<Value>())
                .with_context(|| format!("{}: neither JSON nor TOML", file.display()))?
        }
    };
    Ok(table.get(name).cloned().unwrap_or(table))
}

impl MailboxAddArgs {
    /// The mailbox as `mailbox.add` takes it; the daemon fills in defaults and validates.
    pub(crate) fn settings(&self) -> anyhow::Result<MailboxTable> {
        let mut v = serde_json::json!({
            "name": self.name,
            "host": self.host,
            "username": self.username,
        });
        let o = v.as_object_mut().expect("object");
        let mut set = |k: &str, x: Option<Value>| {
            if let Some(x) = x {
                o.insert(k.to_owned(), x);
            }
        };
        set("port", self.port.map(Value::from));
        set("tls", self.tls.clone().map(Value::from));
        let password = own_secret(
            "--password",
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            None,
        )?;
        set("password", password.map(Value::from));
        set(
            "password_file",
            self.daemon_password_file.as_ref().map(|p| p.display().to_string().into()),
        );
        set("password_env", self.daemon_password_env.clone().map(Value::from));
        set("folder", self.folder.clone().map(Value::from));
        set("poll_interval", self.poll_interval.clone().map(Value::from));
        set("idle", self.idle.map(Value::from));
        let auth = self.auth.clone().or_else(|| self.oauth2.as_ref().map(|_| "xoauth2".into()));
        set("auth", auth.map(Value::from));
        if let Some(file) = &self.oauth2 {
            set("oauth2", Some(read_table(file, "oauth2")?));
        }
        if let Some(file) = &self.smtp {
            set("smtp", Some(smtp_table(file)?));
        }
        match v {
            Value::Object(table) => Ok(MailboxTable(table)),
            _ => unreachable!("built as an object"),
        }
    }
}

/// A secret read by collabctl itself, with the operator's permissions: the file (its last
/// line ending dropped) or collabctl's own environment variable. `base` is the directory
/// relative files are found in (the current one when `None`). `flag` names the option.
pub(crate) fn own_secret(
    flag: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
    base: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    if file.is_some() && env.is_some() {
        anyhow::bail!("{flag}_file and {flag}_env: set one, not both");
    }
    if let Some(file) = file {
        let path = match base {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_path_buf(),
        };
        let raw = std::fs::read_to_string(&path)
            .with_context(|| format!("{flag}-file: cannot read {}", path.display()))?;
        return Ok(Some(raw.trim_end_matches(['\r', '\n']).to_owned()));
    }
    match env {
        Some(var) => std::env::var(var)
            .map(Some)
            .with_context(|| format!("{flag}-env: {var} is not set in collabctl's environment")),
        None => Ok(None),
    }
}

/// The `--smtp` table: its `password_file`/`password_env` read here and sent as
/// `password`; `daemon_password_file`/`daemon_password_env` passed on as the daemon's.
pub(crate) fn smtp_table(file: &std::path::Path) -> anyhow::Result<Value> {
    let mut table = read_table(file, "smtp")?;
    let Some(o) = table.as_object_mut() else { return Ok(table) };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let pw_file = text(o.remove("password_file")).map(PathBuf::from);
    let pw_env = text(o.remove("password_env"));
    let base = file.parent();
    let flag = format!("{}: password", file.display());
    if let Some(pw) = own_secret(&flag, pw_file.as_deref(), pw_env.as_deref(), base)? {
        o.insert("password".into(), pw.into());
    }
    for (theirs, key) in
        [("daemon_password_file", "password_file"), ("daemon_password_env", "password_env")]
    {
        if let Some(v) = o.remove(theirs) {
            o.insert(key.into(), v);
        }
    }
    Ok(table)
}

/// Runs `collabctl mailbox …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &MailboxCmd) -> anyhow::Result<()> {
    match cmd {
        MailboxCmd::Add(args) => show(cli, c, args.settings()?, render_mailbox),
        MailboxCmd::List => show(cli, c, MailboxList {}, |x| render_mailboxes(x)),
        MailboxCmd::Show { name } => {
            show(cli, c, MailboxShow { mailbox: name.clone() }, render_mailbox)
        }
        MailboxCmd::Pause { name } => {
            show(cli, c, MailboxPause { mailbox: name.clone() }, |x| render_mailboxes(slice(x)))
        }
        MailboxCmd::Resume { name } => {
            show(cli, c, MailboxResume { mailbox: name.clone() }, |x| render_mailboxes(slice(x)))
        }
        MailboxCmd::Remove { name } => {
            show(cli, c, MailboxRemove { mailbox: name.clone() }, |x| render_mailboxes(slice(x)))
        }
        MailboxCmd::Authorize { .. } => unreachable!("handled above"),
    }
}

/// Runs an OAuth2 authorization with the daemon: shows the operator where to go, then waits
/// for the device approval or for the browser's redirect to a loopback listener.
pub(crate) fn authorize(
    cli: &Cli,
    login: MailboxAuthorizeStatus,
    flow: Flow,
    redirect_port: u16,
    wait: Duration,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", redirect_port))
        .context("cannot listen for the redirect on 127.0.0.1")?;
    let redirect_uri = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let mut c = Client::connect(&cli.socket)?;
    let start = c.call(MailboxAuthorize {
        mailbox: login.mailbox.clone(),
        smtp: login.smtp,
        flow,
        redirect_uri: Some(redirect_uri),
    })?;
    let deadline = std::time::Instant::now() + wait;
    match start {
        AuthorizeStart::Device(start) => {
            println!(
                "To authorize, open {} and enter the code {}",
                display::escape(&start.verification_uri),
                display::text(&start.user_code)
            );
            std::io::stdout().flush()?;
            let interval = Duration::from_secs(start.interval.max(1));
            loop {
                std::thread::sleep(interval);
                match c.call(login.clone())? {
                    AuthorizeState::Authorized => break,
                    AuthorizeState::Failed { error } => {
                        bail!("authorization failed: {}", Value::from(error))
                    }
                    AuthorizeState::Pending if std::time::Instant::now() > deadline => {
                        bail!("gave up waiting")
                    }
                    AuthorizeState::Pending => {}
                }
            }
        }
        AuthorizeStart::Code { authorize_url } => {
            drop(c);
            // Escaped, never cut: the operator must be able to open it.
            let url = display::escape(&authorize_url);
            println!("To authorize, open this address in a browser:\n{url}");
            std::io::stdout().flush()?;
            let (code, state) = await_redirect(&listener, deadline)?;
            Client::connect(&cli.socket)?.call(MailboxAuthorizeFinish {
                mailbox: login.mailbox,
                smtp: login.smtp,
                code,
                state,
            })?;
        }
    }
    println!("authorized: the refresh token is stored and the login retried");
    Ok(())
}

/// Accepts the browser's redirect and reads `code` and `state` from it.
pub(crate) fn await_redirect(
    listener: &std::net::TcpListener,
    deadline: std::time::Instant,
) -> anyhow::Result<(String, String)> {
    listener.set_nonblocking(true)?;
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    bail!("gave up waiting for the redirect");
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut first = String::new();
        BufReader::new(&stream).read_line(&mut first)?;
        // "GET /?code=…&state=… HTTP/1.1"
        let target = first.split_whitespace().nth(1).unwrap_or_default();
        let url = url::Url::parse(&format!("http://127.0.0.1{target}"))?;
        let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        let (body, found) = match (get("code"), get("state"), get("error")) {
            (Some(code), Some(state), _) => {
                ("collabd: authorized. You may close this tab.", Some((code, state)))
            }
            (_, _, Some(error)) => {
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\ncollabd: {error}"
                );
                bail!("the provider refused: {error}");
            }
            _ => ("collabd: waiting for the authorization redirect.", None),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}"
        );
        if let Some(found) = found {
            return Ok(found);
        }
    }
}
