//! `collab.*`: collaborations, their terms and their lifecycle.

use super::*;

impl Handler for CollabCreate {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        ctx.collab_create(self, cx.actor).await
    }
}

impl Handler for CollabList {
    async fn handle(
        self,
        ctx: &AdminContext,
        _: &mut Cx<'_>,
    ) -> Result<Listing<Collaboration>, ErrorBody> {
        let page = self.page();
        let filter = CollabFilter {
            campaign_id: match self.campaign {
                Some(c) => Some(ctx.campaign(&c).await?.id),
                None => None,
            },
            creator_id: match self.creator {
                Some(c) => Some(ctx.creator(&c).await?.id),
                None => None,
            },
            status: self.status,
            since: self.since,
        };
        let list = paged(page, |page| ctx.store.list_collaborations(&filter, page), |c| c.id);
        list.await?.try_map(TryInto::try_into).map_err(internal)
    }
}

impl Handler for CollabShow {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        ctx.collab_show(self.id).await
    }
}

impl Handler for CollabUpdate {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        let terms = validate_terms(self.terms)?;
        ctx.store
            .update_terms(self.id, &terms, cx.actor, self.reason.as_deref())
            .await
            .map_err(collab_error)?;
        ctx.collab_show(self.id).await
    }
}

impl Handler for CollabAdvance {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        if self.to == CollabStatus::Cancelled {
            return Err(invalid("to", "use collab.cancel (a reason is required)"));
        }
        ctx.transition(self.id, self.to, cx.actor, self.reason.as_deref()).await
    }
}

impl Handler for CollabCancel {
    async fn handle(self, ctx: &AdminContext, cx: &mut Cx<'_>) -> Result<CollabDetail, ErrorBody> {
        if self.reason.trim().is_empty() {
            return Err(invalid("reason", "a reason is required"));
        }
        ctx.transition(self.id, CollabStatus::Cancelled, cx.actor, Some(&self.reason)).await
    }
}

impl AdminContext {
    pub(super) async fn collab_create(
        &self,
        p: CollabCreate,
        actor: &str,
    ) -> Result<CollabDetail, ErrorBody> {
        let terms = validate_terms(p.terms)?;
        let creator = self.creator(&p.creator).await?;
        let campaign = self.campaign(&p.campaign).await?;
        let id = self
            .store
            .create_manual_collaboration(creator.id, campaign.id, &terms, p.allow_duplicate, actor)
            .await
            .map_err(collab_error)?;
        self.collab_show(id).await
    }

    pub(super) async fn collab_show(&self, id: i64) -> Result<CollabDetail, ErrorBody> {
        let collab = self
            .store
            .collaboration(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found("id", &id.to_string()))?;
        let events = self.store.events(id).await.map_err(internal)?;
        let messages = self.store.linked_messages(id).await.map_err(internal)?;
        Ok(CollabDetail {
            collab: collab.try_into().map_err(internal)?,
            events: events
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()
                .map_err(internal)?,
            messages: messages.into_iter().map(Into::into).collect(),
        })
    }

    pub(super) async fn transition(
        &self,
        id: i64,
        to: CollabStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<CollabDetail, ErrorBody> {
        self.store.transition(id, to, actor, reason).await.map_err(collab_error)?;
        self.collab_show(id).await
    }
}

/// Checks terms and writes their amounts in minor units, as they are stored.
pub(super) fn validate_terms(t: Terms) -> Result<Terms, ErrorBody> {
    t.validate().map_err(|e| {
        ErrorBody::field(ErrorCode::InvalidParams, format!("terms.{}", e.field), e.message)
    })?;
    Ok(t.in_minor_units())
}

pub(super) fn collab_error(e: CollabError) -> ErrorBody {
    match e {
        CollabError::NotFound(id) => not_found("id", &id.to_string()),
        CollabError::Duplicate(existing) => ErrorBody {
            code: ErrorCode::Duplicate,
            message: format!(
                "an open collaboration for this creator and campaign exists: {existing} (use allow_duplicate to add another)"
            ),
            field: Some("creator".into()),
        },
        e @ CollabError::IllegalMove { .. } => {
            ErrorBody::field(ErrorCode::InvalidTransition, "to", e.to_string())
        }
        CollabError::Store(e) => internal(e),
    }
}
