//! `mailbox.*`: run-time mailboxes (added, shown, paused, removed) and OAuth2
//! authorization of a mailbox's logins.

use super::*;

impl Handler for MailboxTable {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<MailboxEntry, ErrorBody> {
        ctx.mailbox_add(mailbox_settings(self)?).await
    }
}

impl Handler for MailboxList {
    async fn handle(
        self,
        ctx: &AdminContext,
        _: &mut Cx<'_>,
    ) -> Result<Vec<MailboxEntry>, ErrorBody> {
        ctx.mailbox_list().await
    }
}

impl Handler for MailboxShow {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<MailboxEntry, ErrorBody> {
        ctx.mailbox_show(&self.mailbox).await
    }
}

impl Handler for MailboxPause {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<MailboxEntry, ErrorBody> {
        ctx.mailbox_change(&self.mailbox, Some(true)).await
    }
}

impl Handler for MailboxResume {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<MailboxEntry, ErrorBody> {
        ctx.mailbox_change(&self.mailbox, Some(false)).await
    }
}

impl Handler for MailboxRemove {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<MailboxEntry, ErrorBody> {
        ctx.mailbox_change(&self.mailbox, None).await
    }
}

impl Handler for MailboxAuthorize {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<AuthorizeStart, ErrorBody> {
        ctx.authorize(self).await
    }
}

impl Handler for MailboxAuthorizeFinish {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<AuthorizeState, ErrorBody> {
        let login = MailboxAuthorizeStatus { mailbox: self.mailbox, smtp: self.smtp };
        let (key, source) = ctx.login(&login)?;
        let start = ctx.logins.take_code(&key).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::NotFound,
                "no code flow in progress for this login: start it again",
            )
        })?;
        let result = source.finish_code(start, &self.code, &self.state).await;
        ctx.authorize_result(&key, result)?;
        Ok(AuthorizeState::Authorized)
    }
}

impl Handler for MailboxAuthorizeStatus {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<AuthorizeState, ErrorBody> {
        let (key, _) = ctx.login(&self)?;
        let state = ctx.logins.state(&key).ok_or_else(|| {
            ErrorBody::new(ErrorCode::NotFound, "no authorization was started for this login")
        })?;
        Ok(state)
    }
}

impl AdminContext {
    /// The file's mailbox of that name, with its index there.
    pub(super) fn file_mailbox(&self, name: &str) -> Option<(usize, MailboxSettings)> {
        let file = self.file_config.read().expect("file config lock");
        file.mailboxes.iter().enumerate().find(|(_, m)| m.name == name).map(|(i, m)| (i, m.clone()))
    }

    /// Checks a runtime mailbox against `crate::confine`'s rules (before anything it names
    /// is read), validates it like a file entry, seals its passwords and stores it; the
    /// running daemon picks it up through the `collabd_mailboxes` notification.
    pub(super) async fn mailbox_add(&self, mb: MailboxSettings) -> Result<MailboxEntry, ErrorBody> {
        let (admin, key_file) = {
            let file = self.file_config.read().expect("file config lock");
            (file.admin.clone(), file.secrets.key_file.clone())
        };
        let confined = crate::confine::confine_mailbox(&mb, &admin)
            .map_err(|e| mailbox_error(ErrorCode::Forbidden, e))?;
        crate::config::validate_mailbox(0, &confined)
            .map_err(|e| mailbox_error(ErrorCode::InvalidParams, e))?;
        if let Some((i, _)) = self.file_mailbox(&mb.name) {
            return Err(name_clash(&mb.name, i));
        }
        if mb.uses_oauth() && key_file.is_none() {
            return Err(invalid(
                "auth",
                "OAuth2 needs [secrets] key_file in the config file (it encrypts the stored \
                 refresh tokens)",
            ));
        }
        let passwords = seal_passwords(&mb, key_file.as_deref())?;
        // The passwords live sealed in their own table, never in the settings JSON.
        let mut stored = mb.clone();
        stored.password = None;
        if let Some(s) = &mut stored.smtp {
            s.password = None;
        }
        let json = serde_json::to_value(&stored).map_err(internal)?;
        let row = self.store.insert_mailbox(&mb.name, &json, &passwords).await.map_err(internal)?;
        let row = row.ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::Conflict,
                "name",
                format!("a database mailbox named {:?} exists already", mb.name),
            )
        })?;
        let logins = passwords.iter().map(|(l, _)| l.as_str().to_owned()).collect();
        stored_entry(row, logins)
    }

    /// Which logins of each database mailbox have a stored (sealed) password.
    pub(super) async fn password_logins(&self) -> Result<HashMap<String, Vec<String>>, ErrorBody> {
        let mut logins: HashMap<String, Vec<String>> = HashMap::new();
        for p in self.store.mailbox_passwords().await.map_err(internal)? {
            logins.entry(p.mailbox).or_default().push(p.login.as_str().to_owned());
        }
        Ok(logins)
    }

    pub(super) async fn mailbox_list(&self) -> Result<Vec<MailboxEntry>, ErrorBody> {
        let file = self.file_config.read().expect("file config lock").mailboxes.clone();
        let mut all: Vec<MailboxEntry> =
            file.into_iter().map(file_entry).collect::<Result<_, _>>()?;
        let mut logins = self.password_logins().await?;
        for row in self.store.stored_mailboxes().await.map_err(internal)? {
            let stored = logins.remove(&row.name).unwrap_or_default();
            all.push(stored_entry(row, stored)?);
        }
        Ok(all)
    }

    pub(super) async fn mailbox_show(&self, name: &str) -> Result<MailboxEntry, ErrorBody> {
        if let Some((_, m)) = self.file_mailbox(name) {
            return file_entry(m);
        }
        let row = self.store.stored_mailbox(name).await.map_err(internal)?;
        let stored = self.password_logins().await?.remove(name).unwrap_or_default();
        stored_entry(row.ok_or_else(|| not_found("mailbox", name))?, stored)
    }

    /// Pauses (`Some(true)`), resumes (`Some(false)`) or removes (`None`) a database
    /// mailbox; the file's are changed in the file.
    pub(super) async fn mailbox_change(
        &self,
        name: &str,
        paused: Option<bool>,
    ) -> Result<MailboxEntry, ErrorBody> {
        if let Some((i, _)) = self.file_mailbox(name) {
            return Err(ErrorBody::field(
                ErrorCode::Conflict,
                "mailbox",
                format!(
                    "mailbox {name:?} is defined in the config file (mailboxes[{i}]): change it \
                     there and reload (SIGHUP)"
                ),
            ));
        }
        // Read first: a removed mailbox's passwords go with it.
        let stored = self.password_logins().await?.remove(name).unwrap_or_default();
        let row = match paused {
            Some(p) => self.store.set_mailbox_paused(name, p).await,
            None => self.store.delete_mailbox(name).await,
        };
        stored_entry(row.map_err(internal)?.ok_or_else(|| not_found("mailbox", name))?, stored)
    }

    /// The names of every mailbox, the file's and the database's (paused ones too).
    pub(super) async fn known_mailboxes(&self) -> Result<HashSet<String>, ErrorBody> {
        let mut names: HashSet<String> = {
            let file = self.file_config.read().expect("file config lock");
            file.mailboxes.iter().map(|m| m.name.clone()).collect()
        };
        names.extend(
            self.store.stored_mailboxes().await.map_err(internal)?.into_iter().map(|r| r.name),
        );
        Ok(names)
    }

    /// The token source of a login named by `mailbox` or `smtp`.
    pub(super) fn login(
        &self,
        p: &MailboxAuthorizeStatus,
    ) -> Result<(String, std::sync::Arc<crate::oauth::TokenSource>), ErrorBody> {
        let key = match (&p.mailbox, p.smtp) {
            (Some(name), false) => crate::oauth::Logins::mailbox_key(name),
            // A mailbox's own SMTP login (`[mailboxes.smtp]`).
            (Some(name), true) => crate::oauth::Logins::mailbox_smtp_key(name),
            (None, true) => crate::oauth::Logins::SMTP_KEY.to_owned(),
            (None, false) => {
                return Err(ErrorBody::field(
                    ErrorCode::InvalidParams,
                    "mailbox",
                    "name a mailbox, set smtp, or both (a mailbox's own SMTP login)",
                ));
            }
        };
        let source = self.logins.get(&key).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::NotFound,
                "mailbox",
                format!("{key:?} is not configured with auth = \"xoauth2\" or \"oauthbearer\""),
            )
        })?;
        Ok((key, source))
    }

    /// Records how an authorization ended, as the admin answer and for the status call.
    pub(super) fn authorize_result(
        &self,
        key: &str,
        result: Result<(), crate::oauth::OAuthError>,
    ) -> Result<(), ErrorBody> {
        use crate::oauth::AuthorizeState;
        match result {
            Ok(()) => {
                self.logins.set_state(key, AuthorizeState::Authorized);
                Ok(())
            }
            Err(e) => {
                self.logins.set_state(key, AuthorizeState::Failed { error: e.to_string() });
                Err(ErrorBody::new(ErrorCode::Oauth, e.to_string()))
            }
        }
    }

    /// Starts the device flow (polled to its end in the background) or the code flow.
    pub(super) async fn authorize(&self, p: MailboxAuthorize) -> Result<AuthorizeStart, ErrorBody> {
        use crate::oauth::AuthorizeState;
        let (key, source) =
            self.login(&MailboxAuthorizeStatus { mailbox: p.mailbox, smtp: p.smtp })?;
        let device = match p.flow {
            Flow::Device => true,
            Flow::Code => false,
            Flow::Auto => source.has_device_flow(),
        };
        if device {
            let (start, pending) = source
                .start_device()
                .await
                .map_err(|e| ErrorBody::new(ErrorCode::Oauth, e.to_string()))?;
            self.logins.set_state(&key, AuthorizeState::Pending);
            let logins = self.logins.clone();
            tokio::spawn(async move {
                let state = match source.finish_device(pending).await {
                    Ok(()) => AuthorizeState::Authorized,
                    Err(e) => {
                        tracing::warn!(login = %key, error = %e, "device authorization failed");
                        AuthorizeState::Failed { error: e.to_string() }
                    }
                };
                logins.set_state(&key, state);
            });
            return Ok(AuthorizeStart::Device(start.into()));
        }
        let redirect = p.redirect_uri.ok_or_else(|| {
            ErrorBody::field(ErrorCode::InvalidParams, "redirect_uri", "required by the code flow")
        })?;
        let start = source
            .start_code(&redirect)
            .map_err(|e| ErrorBody::new(ErrorCode::Oauth, e.to_string()))?;
        let url = start.authorize_url.clone();
        self.logins.hold_code(&key, start);
        self.logins.set_state(&key, AuthorizeState::Pending);
        Ok(AuthorizeStart::Code { authorize_url: url })
    }
}

/// The refusal of a database mailbox whose name the file uses: names both.
pub(super) fn name_clash(name: &str, index: usize) -> ErrorBody {
    ErrorBody::field(
        ErrorCode::Conflict,
        "name",
        format!(
            "mailbox {name:?} is defined both in the config file (mailboxes[{index}]) and in \
             the database (mailbox add): names must be unique"
        ),
    )
}

/// A refused or invalid runtime mailbox as an error naming its key relative to the
/// request (`password_file`, `smtp.tls`).
pub(super) fn mailbox_error(code: ErrorCode, e: ConfigError) -> ErrorBody {
    match e {
        ConfigError::Invalid { key, reason } => {
            let field = key.strip_prefix("mailboxes[0].").unwrap_or(&key).to_owned();
            ErrorBody::field(code, field.clone(), format!("{field}: {reason}"))
        }
        other => invalid(".", other.to_string()),
    }
}

/// The request's passwords (`password`, `smtp.password`) sealed with `[secrets] key_file`,
/// each bound to its mailbox and login; none configured is `not_configured`.
pub(super) fn seal_passwords(
    mb: &MailboxSettings,
    key_file: Option<&std::path::Path>,
) -> Result<Vec<(PasswordLogin, SealedToken)>, ErrorBody> {
    let given = [
        (PasswordLogin::Imap, "password", mb.password.as_ref()),
        (PasswordLogin::Smtp, "smtp.password", mb.smtp.as_ref().and_then(|s| s.password.as_ref())),
    ];
    let given: Vec<_> = given.into_iter().filter_map(|(l, f, p)| Some((l, f, p?))).collect();
    let Some((_, field, _)) = given.first() else { return Ok(Vec::new()) };
    let Some(key_file) = key_file else {
        return Err(ErrorBody::field(
            ErrorCode::NotConfigured,
            *field,
            "a password sent with mailbox.add is stored encrypted with [secrets] key_file, \
             and the config file sets none (secrets.key_file: openssl rand -hex 32)",
        ));
    };
    let key = crate::oauth::SecretKey::load(key_file).map_err(internal)?;
    Ok(given
        .into_iter()
        .map(|(login, _, p)| (login, key.seal_bound(p.expose(), &login.context(&mb.name))))
        .collect())
}

/// A mailbox's entry: the summary the tables show and every setting as a table.
pub(super) fn entry(m: &MailboxSettings, source: MailboxSource) -> Result<MailboxEntry, ErrorBody> {
    let Value::Object(table) = serde_json::to_value(m).map_err(internal)? else {
        return Err(internal("mailbox settings are not a table"));
    };
    let auth = serde_json::to_value(m.auth).map_err(internal)?;
    Ok(MailboxEntry {
        name: m.name.clone(),
        source,
        paused: false,
        host: m.host.clone(),
        port: m.effective_port(),
        username: m.username.clone(),
        folder: m.folder.clone(),
        auth: auth.as_str().unwrap_or_default().to_owned(),
        settings: MailboxTable(table),
        stored_passwords: Vec::new(),
        created_at: None,
        updated_at: None,
    })
}

pub(super) fn file_entry(m: MailboxSettings) -> Result<MailboxEntry, ErrorBody> {
    entry(&m, MailboxSource::File)
}

pub(super) fn stored_entry(
    row: StoredMailbox,
    stored_passwords: Vec<String>,
) -> Result<MailboxEntry, ErrorBody> {
    let mut settings: MailboxSettings = serde_json::from_value(row.settings).map_err(internal)?;
    // Never stored there; should a hand-written row carry one, it is not shown either.
    settings.password = None;
    if let Some(s) = &mut settings.smtp {
        s.password = None;
    }
    Ok(MailboxEntry {
        paused: row.paused,
        stored_passwords,
        created_at: Some(row.created_at),
        updated_at: Some(row.updated_at),
        ..entry(&settings, MailboxSource::Database)?
    })
}

/// `mailbox.add`'s table read by the config's rules, a bad key named by its path.
pub(super) fn mailbox_settings(t: MailboxTable) -> Result<MailboxSettings, ErrorBody> {
    serde_path_to_error::deserialize(Value::Object(t.0)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path.is_empty() { ".".to_owned() } else { path };
        invalid_params(&path, e.into_inner().to_string())
    })
}
