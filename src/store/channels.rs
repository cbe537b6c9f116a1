//! The Postgres NOTIFY channels: one definition each, shared by the statements that NOTIFY
//! (which bind these names as parameters) and the listeners. Every notification's payload
//! is a row id or a mailbox name, and Postgres delivers it only when its transaction
//! commits.

/// A collaboration was created: payload its id (`collabctl watch`, the platform).
pub const COLLABORATIONS: &str = "collabd_collaboration";

/// An inbound message was stored unmatched: payload its id.
pub const UNMATCHED: &str = "collabd_unmatched";

/// A row of `mailboxes` changed: payload its name. The trigger of migration
/// `20261130000009_mailboxes.sql` NOTIFYs it; a test checks it names this channel.
pub const MAILBOXES: &str = "collabd_mailboxes";

#[cfg(test)]
mod tests {
    #[test]
    fn the_mailboxes_trigger_notifies_this_channel() {
        let sql = include_str!("../../migrations/20261130000009_mailboxes.sql");
        assert!(sql.contains(&format!("pg_notify('{}'", super::MAILBOXES)));
    }
}
