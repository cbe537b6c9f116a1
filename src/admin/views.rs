//! Rows into the protocol's views (`protocol`'s wire types): the one
//! place the server turns what the store, ingest and OAuth hold into what the protocol
//! promises. Stored terms are JSON written by any version of collabd; they are read into
//! the typed terms here, amounts in their currency's minor units.

use super::protocol as wire;
use crate::collab::{Compensation, Deliverable, EventKind, Timeline};
use crate::store::{campaigns, collabs, creators, inbound};

impl From<campaigns::Campaign> for wire::Campaign {
    fn from(c: campaigns::Campaign) -> Self {
        wire::Campaign {
            id: c.id,
            name: c.name,
            archived_at: c.archived_at,
            created_at: c.created_at,
            mailboxes: c.mailboxes,
        }
    }
}

impl From<creators::Creator> for wire::Creator {
    fn from(c: creators::Creator) -> Self {
        let emails = c
            .emails
            .into_iter()
            .map(|e| wire::CreatorEmail { address: e.address, role: e.role, learned: e.learned })
            .collect();
        wire::Creator {
            id: c.id,
            name: c.name,
            platform: c.platform,
            handle: c.handle,
            tags: c.tags,
            emails,
            unsubscribed_at: c.unsubscribed_at,
        }
    }
}

/// Why a stored row cannot be shown: it holds what no version of collabd writes.
#[derive(Debug, thiserror::Error)]
#[error("collaboration {id}: stored {what} cannot be read: {why}")]
pub struct Unreadable {
    id: i64,
    what: &'static str,
    why: String,
}

fn stored<T: serde::de::DeserializeOwned>(
    id: i64,
    what: &'static str,
    v: serde_json::Value,
) -> Result<T, Unreadable> {
    // An empty object or null is "not set yet" (a collaboration created from a reply).
    let v = match v {
        serde_json::Value::Null => serde_json::json!({}),
        v => v,
    };
    serde_json::from_value(v).map_err(|e| Unreadable { id, what, why: e.to_string() })
}

impl TryFrom<collabs::Collaboration> for wire::Collaboration {
    type Error = Unreadable;

    fn try_from(c: collabs::Collaboration) -> Result<Self, Unreadable> {
        let deliverables: Vec<Deliverable> = match c.deliverables {
            serde_json::Value::Null => Vec::new(),
            v => stored(c.id, "deliverables", v)?,
        };
        let mut compensation: Compensation = stored(c.id, "compensation", c.compensation)?;
        if let Some(fee) = &mut compensation.fixed_fee {
            *fee = fee.in_minor_units();
        }
        let timeline: Timeline = stored(c.id, "timeline", c.timeline)?;
        Ok(wire::Collaboration {
            id: c.id,
            status: c.status,
            source: c.source,
            creator: wire::CreatorRef {
                id: c.creator.id,
                name: c.creator.name,
                platform: c.creator.platform,
                handle: c.creator.handle,
            },
            campaign: wire::CampaignRef { id: c.campaign.id, name: c.campaign.name },
            deliverables,
            compensation,
            timeline,
            additional_terms: c.additional_terms,
            thread_id: c.thread_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }
}

impl TryFrom<collabs::Event> for wire::Event {
    type Error = Unreadable;

    fn try_from(e: collabs::Event) -> Result<Self, Unreadable> {
        let kind = EventKind::parse(&e.kind).ok_or_else(|| Unreadable {
            id: 0,
            what: "event kind",
            why: format!("unknown kind {:?}", e.kind),
        })?;
        Ok(wire::Event {
            kind,
            from_status: e.from_status,
            to_status: e.to_status,
            actor: e.actor,
            reason: e.reason,
            at: e.at,
        })
    }
}

impl From<collabs::LinkedMessage> for wire::LinkedMessage {
    fn from(m: collabs::LinkedMessage) -> Self {
        wire::LinkedMessage {
            id: m.id,
            kind: m.kind,
            from_address: m.from_address,
            subject: m.subject,
            sent_date: m.sent_date,
            reply_text: m.reply_text,
        }
    }
}

impl From<inbound::UnmatchedMessage> for wire::UnmatchedMessage {
    fn from(m: inbound::UnmatchedMessage) -> Self {
        wire::UnmatchedMessage {
            id: m.id,
            mailbox: m.mailbox,
            from_address: m.from_address,
            from_name: m.from_name,
            subject: m.subject,
            sent_date: m.sent_date,
            reply_text: m.reply_text,
            received_at: m.received_at,
        }
    }
}

impl From<crate::ingest::RematchReport> for wire::RematchReport {
    fn from(r: crate::ingest::RematchReport) -> Self {
        wire::RematchReport {
            examined: r.examined,
            matched: r.matched,
            collaborations_created: r.collaborations_created,
        }
    }
}

impl From<crate::oauth::DeviceStart> for wire::DeviceStart {
    fn from(d: crate::oauth::DeviceStart) -> Self {
        wire::DeviceStart {
            verification_uri: d.verification_uri,
            user_code: d.user_code,
            expires_in: d.expires_in,
            interval: d.interval,
        }
    }
}

impl<T> wire::Listing<T> {
    /// The same listing with every row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> wire::Listing<U> {
        match self {
            wire::Listing::All(rows) => wire::Listing::All(rows.into_iter().map(f).collect()),
            wire::Listing::Page { items, next_after } => {
                wire::Listing::Page { items: items.into_iter().map(f).collect(), next_after }
            }
        }
    }

    /// The same listing with every row converted by a conversion that may fail.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<wire::Listing<U>, E> {
        Ok(match self {
            wire::Listing::All(rows) => {
                wire::Listing::All(rows.into_iter().map(f).collect::<Result<_, E>>()?)
            }
            wire::Listing::Page { items, next_after } => wire::Listing::Page {
                items: items.into_iter().map(f).collect::<Result<_, E>>()?,
                next_after,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(compensation: serde_json::Value) -> collabs::Collaboration {
        collabs::Collaboration {
            id: 7,
            status: crate::collab::CollabStatus::Pending,
            source: "email".into(),
            creator: collabs::CreatorRef {
                id: 1,
                name: "Ana".into(),
                platform: "tiktok".into(),
                handle: "ana".into(),
            },
            campaign: collabs::CampaignRef { id: 2, name: "Winter Glow".into() },
            deliverables: json!([]),
            compensation,
            timeline: json!({}),
            additional_terms: None,
            thread_id: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn stored_terms_of_any_version_read_typed_in_minor_units() {
        let old = row(json!({"fixed_fee": {"amount": 500.0, "currency": "USD"}}));
        let c = wire::Collaboration::try_from(old).unwrap();
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(
            out["compensation"]["fixed_fee"],
            json!({"amount": "500.00", "currency": "USD"})
        );
        let empty = wire::Collaboration::try_from(row(json!({}))).unwrap();
        assert_eq!(empty.compensation, Compensation::default());
        let broken = row(json!({"fixed_fee": "lots"}));
        let e = wire::Collaboration::try_from(broken).unwrap_err().to_string();
        assert!(e.starts_with("collaboration 7: stored compensation"), "{e}");
    }
}
