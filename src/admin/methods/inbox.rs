//! `inbox.*`: mail no rule matched, assigned by hand, declines undone, re-matching.

use super::*;

impl Handler for InboxUnmatched {
    async fn handle(
        self,
        ctx: &AdminContext,
        _: &mut Cx<'_>,
    ) -> Result<Listing<UnmatchedMessage>, ErrorBody> {
        let list = paged(self.page(), |page| ctx.store.unmatched(page), |m| m.id);
        Ok(list.await?.map(Into::into))
    }
}

impl Handler for InboxAssign {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        let creator = ctx.creator(&self.creator).await?;
        let campaign = ctx.campaign(&self.campaign).await?;
        let collab = ctx
            .store
            .assign_unmatched(self.message, creator.id, campaign.id, cx.actor)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("message", &format!("{} (unmatched)", self.message)))?;
        ctx.collab_show(collab.id).await
    }
}

impl Handler for InboxUndecline {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        if self.reason.trim().is_empty() {
            return Err(invalid("reason", "must not be empty"));
        }
        let collab = ctx
            .store
            .undecline(self.message, cx.actor, self.reason.trim())
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                let what = format!("{} (a matched decline or complaint)", self.message);
                not_found("message", &what)
            })?;
        ctx.collab_show(collab.id).await
    }
}

impl Handler for InboxRematch {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<RematchReport, ErrorBody> {
        let report = crate::ingest::rematch(&ctx.store, self.since).await.map_err(internal)?;
        Ok(report.into())
    }
}
