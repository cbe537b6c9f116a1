//! The collaboration domain: statuses and the lifecycle rules between them.

use serde::{Deserialize, Serialize};

/// Where a collaboration stands. Mirrors the Postgres enum `collab_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "collab_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CollabStatus {
    Pending,
    Negotiating,
    Fulfilling,
    Completed,
    Cancelled,
}

impl CollabStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [CollabStatus; 5] = [
        CollabStatus::Pending,
        CollabStatus::Negotiating,
        CollabStatus::Fulfilling,
        CollabStatus::Completed,
        CollabStatus::Cancelled,
    ];

    /// The spelling used in the database, the admin protocol and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CollabStatus::Pending => "pending",
            CollabStatus::Negotiating => "negotiating",
            CollabStatus::Fulfilling => "fulfilling",
            CollabStatus::Completed => "completed",
            CollabStatus::Cancelled => "cancelled",
        }
    }

    /// Completed and cancelled collaborations never change again.
    pub fn is_final(self) -> bool {
        matches!(self, CollabStatus::Completed | CollabStatus::Cancelled)
    }

    /// The statuses reachable in one step: the next stage, and cancellation while open.
    pub fn next_states(self) -> Vec<CollabStatus> {
        let forward = match self {
            CollabStatus::Pending => Some(CollabStatus::Negotiating),
            CollabStatus::Negotiating => Some(CollabStatus::Fulfilling),
            CollabStatus::Fulfilling => Some(CollabStatus::Completed),
            CollabStatus::Completed | CollabStatus::Cancelled => None,
        };
        let cancel = (!self.is_final()).then_some(CollabStatus::Cancelled);
        forward.into_iter().chain(cancel).collect()
    }

    /// Whether `self → to` is a legal move.
    pub fn can_move_to(self, to: CollabStatus) -> bool {
        self.next_states().contains(&to)
    }
}

impl std::fmt::Display for CollabStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CollabStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CollabStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::CollabStatus::{self, *};

    #[test]
    fn lifecycle_moves_forward_or_cancels() {
        assert!(Pending.can_move_to(Negotiating));
        assert!(Negotiating.can_move_to(Fulfilling));
        assert!(Fulfilling.can_move_to(Completed));
        assert!(!Pending.can_move_to(Fulfilling));
        assert!(!Negotiating.can_move_to(Pending));
        for open in [Pending, Negotiating, Fulfilling] {
            assert!(open.can_move_to(Cancelled));
        }
        for done in [Completed, Cancelled] {
            assert!(done.next_states().is_empty());
        }
        assert_eq!("Fulfilling".parse::<CollabStatus>(), Ok(Fulfilling));
        assert!("done".parse::<CollabStatus>().is_err());
    }
}
