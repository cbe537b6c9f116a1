//! `campaign.*`: campaigns and the mailboxes they are bound to.

use super::*;

impl Handler for CampaignCreate {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<wire::Campaign, ErrorBody> {
        Ok(ctx.campaign_create(self).await?.into())
    }
}

impl Handler for CampaignList {
    async fn handle(
        self,
        ctx: &AdminContext,
        _: &mut Cx<'_>,
    ) -> Result<Vec<wire::Campaign>, ErrorBody> {
        let rows = ctx.store.list_campaigns().await.map_err(internal)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl Handler for CampaignArchive {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<wire::Campaign, ErrorBody> {
        let c = ctx.campaign(&self.campaign).await?;
        // None only if the campaign went away since it was found.
        let archived = ctx.store.archive_campaign(c.id).await.map_err(internal)?;
        Ok(archived.ok_or_else(|| not_found("campaign", &self.campaign))?.into())
    }
}

impl Handler for CampaignBind {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<wire::Campaign, ErrorBody> {
        let bound = ctx.campaign_bind(self).await?;
        // Unbinding may explain waiting mail; the report is logged.
        ctx.rematch_after_change().await;
        Ok(bound.into())
    }
}

impl AdminContext {
    pub(super) async fn campaign_create(&self, p: CampaignCreate) -> Result<Campaign, ErrorBody> {
        let name = p.name.trim();
        if name.is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        self.check_mailboxes(&p.mailboxes).await?;
        self.store.create_campaign(name, &p.mailboxes).await.map_err(internal)?.ok_or_else(|| {
            ErrorBody::field(ErrorCode::Conflict, "name", format!("campaign {name:?} exists"))
        })
    }

    pub(super) async fn campaign_bind(&self, p: CampaignBind) -> Result<Campaign, ErrorBody> {
        let c = self.campaign(&p.campaign).await?;
        self.check_mailboxes(&p.mailboxes).await?;
        let bound = self.store.bind_campaign(c.id, &p.mailboxes).await.map_err(internal)?;
        bound.ok_or_else(|| not_found("campaign", &p.campaign))
    }

    /// A binding names only mailboxes that exist (the file's or the database's).
    pub(super) async fn check_mailboxes(&self, mailboxes: &[String]) -> Result<(), ErrorBody> {
        let known = self.known_mailboxes().await?;
        match mailboxes.iter().enumerate().find(|(_, m)| !known.contains(*m)) {
            Some((i, m)) => Err(ErrorBody::field(
                ErrorCode::NotFound,
                format!("mailboxes[{i}]"),
                format!("no mailbox {m:?} (see `collabctl mailbox list`)"),
            )),
            None => Ok(()),
        }
    }
}
