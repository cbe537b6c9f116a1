//! What `watch` streams: the event for each notification (the connection does the
//! streaming, `server::watch`).

use super::*;

/// The connection itself streams a watch (`server::watch`); as one answer it is refused.
impl Handler for Watch {
    async fn handle(self, _: &AdminContext, _: &mut Cx<'_>) -> Result<WatchEvent, ErrorBody> {
        Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "watch is served by the connection, not as one answer",
        ))
    }
}

impl AdminContext {
    /// The event `watch` sends for a notification on `channel` about row `id`; `None` when
    /// the row is gone (a collaboration deleted, a message matched since).
    pub async fn watch_event(&self, channel: &str, id: i64) -> Option<WatchEvent> {
        let found = match channel {
            channels::COLLABORATIONS => match self.store.collaboration(id).await {
                Ok(Some(c)) => match Collaboration::try_from(c) {
                    Ok(c) => Ok(Some(WatchEvent::Collaboration(Box::new(c)))),
                    Err(e) => {
                        tracing::warn!(error = %e, "watch: cannot show the collaboration");
                        Ok(None)
                    }
                },
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            _ => self
                .store
                .unmatched_message(id)
                .await
                .map(|m| m.map(|m| WatchEvent::Unmatched(m.into()))),
        };
        found.unwrap_or_else(|e| {
            tracing::warn!(error = %e, channel, id, "watch: cannot load the row");
            None
        })
    }
}
