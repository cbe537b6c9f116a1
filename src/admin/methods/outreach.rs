//! `outreach.record` and `outreach.send`: outreach sent elsewhere, and sent by collabd
//! through the mailbox's SMTP identity.

use super::*;

impl Handler for OutreachFields {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<RecordReport, ErrorBody> {
        let new = ctx.outreach_rows(vec![Ok(self)]).await?.remove(0)?;
        let recorded = ctx.store.record_outreach(&[new]).await.map_err(internal)?;
        let rematched = Some(ctx.rematch_after_change().await);
        Ok(RecordReport { recorded, skipped: 1 - recorded, rematched })
    }
}

impl Handler for OutreachSend {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<SendResult, ErrorBody> {
        ctx.outreach_send(self, cx.actor).await
    }
}

impl AdminContext {
    /// Checks outreach rows and resolves their creators (all in one query) and campaigns
    /// (remembered across rows: they are nearly always the same few). `outreach.record`
    /// passes one row, an import a chunk.
    pub(super) async fn outreach_rows(
        &self,
        rows: Vec<Result<OutreachFields, ErrorBody>>,
    ) -> Result<Vec<Result<NewOutreach, ErrorBody>>, ErrorBody> {
        let keys: Vec<&str> =
            rows.iter().map(|r| r.as_ref().map_or("", |r| r.creator.as_str())).collect();
        let creator_ids = self.store.creator_ids(&keys).await.map_err(internal)?;
        let mut campaigns = HashMap::new();
        let known = match rows.iter().any(|r| r.as_ref().is_ok_and(|r| r.mailbox.is_some())) {
            true => self.known_mailboxes().await?,
            false => HashSet::new(),
        };
        let mut checked = Vec::with_capacity(rows.len());
        for (row, creator_id) in rows.into_iter().zip(creator_ids) {
            checked.push(match row {
                Ok(r) => self.outreach_row(&r, creator_id, &mut campaigns, &known).await,
                Err(e) => Err(e),
            });
        }
        Ok(checked)
    }

    pub(super) async fn outreach_row(
        &self,
        r: &OutreachFields,
        creator_id: Option<i64>,
        campaigns: &mut HashMap<String, Campaign>,
        known_mailboxes: &HashSet<String>,
    ) -> Result<NewOutreach, ErrorBody> {
        let message_id = crate::mail::normalize_message_id(&r.message_id).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::InvalidParams,
                "message_id",
                "empty, or holds control characters",
            )
        })?;
        let to = normalize_input_address(&r.to).ok_or_else(|| {
            ErrorBody::field(
                ErrorCode::InvalidParams,
                "to",
                format!("{:?} is not an address", r.to),
            )
        })?;
        let creator_id = creator_id.ok_or_else(|| not_found("creator", &r.creator))?;
        let campaign = match campaigns.get(&r.campaign) {
            Some(c) => c,
            None => {
                let c = self.campaign(&r.campaign).await?;
                campaigns.entry(r.campaign.clone()).or_insert(c)
            }
        };
        let mailbox = r.mailbox.as_deref().map(str::trim).filter(|m| !m.is_empty());
        if let Some(m) = mailbox {
            if !known_mailboxes.contains(m) {
                return Err(not_found("mailbox", m));
            }
            check_binding(campaign, m)?;
        }
        Ok(NewOutreach {
            message_id,
            creator_id,
            campaign_id: campaign.id,
            to_address: to,
            subject: r.subject.clone(),
            sent_at: r.sent_at,
            status: "sent",
            reply_token: None,
            body: None,
            mailbox: mailbox.map(str::to_owned),
        })
    }

    pub(super) async fn outreach_send(
        &self,
        p: OutreachSend,
        actor: &str,
    ) -> Result<SendResult, ErrorBody> {
        // Cloned out of the lock: it is not held while the message goes out.
        let mailer =
            self.mailers.read().expect("mailers lock").pick(p.mailbox.as_deref()).map_err(|e| {
                match e {
                    PickError::NotConfigured(_) => {
                        ErrorBody::new(ErrorCode::NotConfigured, e.to_string())
                    }
                    PickError::UnknownMailbox(_) => {
                        ErrorBody::field(ErrorCode::NotFound, "mailbox", e.to_string())
                    }
                    PickError::Broken(..) => {
                        ErrorBody::field(ErrorCode::Smtp, "mailbox", e.to_string())
                    }
                }
            })?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        if let Some(m) = &p.mailbox {
            check_binding(&campaign, m)?;
        }
        if self.store.is_unsubscribed(creator.id, campaign.id).await.map_err(internal)? {
            return Err(ErrorBody::field(
                ErrorCode::Unsubscribed,
                "creator",
                format!("{} opted out of {} (or of all outreach)", creator.handle, campaign.name),
            ));
        }
        let to = creator
            .emails
            .iter()
            .find(|e| e.role == "creator")
            .or(creator.emails.first())
            .ok_or_else(|| {
                ErrorBody::field(
                    ErrorCode::InvalidParams,
                    "creator",
                    "creator has no email address",
                )
            })?;
        let draft = mailer.draft(&to.address, &p.subject, &p.body).map_err(outreach_error)?;
        if p.dry_run {
            return Ok(SendResult {
                dry_run: true,
                message: Some(draft.preview()),
                message_id: draft.message_id,
                to: to.address.clone(),
                reply_to: draft.reply_to,
                from: mailer.from(),
                mailbox: p.mailbox,
                status: None,
            });
        }
        let row = NewOutreach {
            message_id: draft.message_id.clone(),
            creator_id: creator.id,
            campaign_id: campaign.id,
            to_address: to.address.clone(),
            subject: p.subject.clone(),
            sent_at: None,
            status: "queued",
            reply_token: Some(draft.token.clone()),
            body: Some(p.body.clone()),
            mailbox: p.mailbox.clone(),
        };
        // Recorded before sending, so a reply can never arrive for an unknown Message-ID.
        self.store.record_outreach(&[row]).await.map_err(internal)?;
        let sent = mailer.send(draft.message).await;
        self.store.finish_send(&draft.message_id, sent.is_ok()).await.map_err(internal)?;
        sent.map_err(outreach_error)?;
        info!(actor, message_id = %draft.message_id, to = %to.address,
            mailbox = p.mailbox.as_deref().unwrap_or("-"), "outreach sent");
        Ok(SendResult {
            dry_run: false,
            message_id: draft.message_id,
            to: to.address.clone(),
            reply_to: draft.reply_to,
            from: mailer.from(),
            mailbox: p.mailbox,
            status: Some("sent".to_owned()),
            message: None,
        })
    }
}

/// Outreach of a campaign bound to mailboxes must come from one of them: replies arriving
/// in any other mailbox could never match it.
pub(super) fn check_binding(campaign: &Campaign, mailbox: &str) -> Result<(), ErrorBody> {
    if campaign.mailboxes.is_empty() || campaign.mailboxes.iter().any(|m| m == mailbox) {
        return Ok(());
    }
    Err(invalid(
        "mailbox",
        format!(
            "campaign {:?} is bound to mailbox(es) {}: replies in {mailbox:?} would never match it",
            campaign.name,
            campaign.mailboxes.join(", ")
        ),
    ))
}

pub(super) fn outreach_error(e: OutreachError) -> ErrorBody {
    match e {
        OutreachError::Address(m) => ErrorBody::field(ErrorCode::InvalidParams, "to", m),
        e => ErrorBody::new(ErrorCode::Smtp, e.to_string()),
    }
}
