//! `creator.*` (but imports, see `import`): the Creator Pool.

use super::*;

impl Handler for CreatorFields {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<wire::Creator, ErrorBody> {
        let creator = ctx.creator_add(self).await?;
        // The new creator's addresses may explain waiting mail; its report is logged.
        ctx.rematch_after_change().await;
        Ok(creator.into())
    }
}

impl Handler for CreatorList {
    async fn handle(
        self,
        ctx: &AdminContext,
        _: &mut Cx<'_>,
    ) -> Result<Listing<wire::Creator>, ErrorBody> {
        let search = self.search.as_deref();
        let list = paged(self.page(), |page| ctx.store.list_creators(search, page), |c| c.id);
        Ok(list.await?.map(Into::into))
    }
}

impl Handler for CreatorShow {
    async fn handle(self, ctx: &AdminContext, _: &mut Cx<'_>) -> Result<wire::Creator, ErrorBody> {
        Ok(ctx.creator(&self.creator).await?.into())
    }
}

impl AdminContext {
    pub(super) async fn creator_add(&self, f: CreatorFields) -> Result<Creator, ErrorBody> {
        let new = new_creator(&f)
            .map_err(|(field, msg)| ErrorBody::field(ErrorCode::InvalidParams, field, msg))?;
        let key = format!("{}:{}", new.platform, new.handle);
        if let Some(existing) = self.store.find_creator(&key).await.map_err(internal)? {
            return Err(ErrorBody::field(
                ErrorCode::Conflict,
                "handle",
                format!("creator {key} exists with id {}", existing.id),
            ));
        }
        self.store.upsert_creators(&[new]).await.map_err(internal)?;
        self.creator(&key).await
    }
}

/// Validates and normalises a creator row (used by add and import alike).
pub(super) fn new_creator(f: &CreatorFields) -> Result<NewCreator, (&'static str, String)> {
    let (name, platform, handle) = (f.name.trim(), f.platform.trim(), f.handle.trim());
    for (field, v) in [("name", name), ("platform", platform), ("handle", handle)] {
        if v.is_empty() {
            return Err((field, "must not be empty".into()));
        }
    }
    let norm = |list: &[String], field| -> Result<Vec<String>, (&'static str, String)> {
        list.iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                normalize_input_address(a)
                    .ok_or((field, format!("{a:?} is not one plain email address")))
            })
            .collect()
    };
    Ok(NewCreator {
        name: name.to_owned(),
        platform: platform.to_lowercase(),
        handle: handle.trim_start_matches('@').to_owned(),
        tags: f.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        emails: norm(&f.emails, "email")?,
        manager_emails: norm(&f.manager_emails, "manager_email")?,
    })
}
