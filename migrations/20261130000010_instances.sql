-- Several collabd instances sharing one database (issue #15). Each running daemon has a
-- row in `instances` and renews its heartbeat; a mailbox is worked only by the instance
-- whose lease on it has not expired. Postgres is the only coordinator.
--
-- A lease names its holder; it lasts as long as the holder's heartbeat (`expires_at`,
-- renewed on the instance's one row, so a renewal never waits for the lease rows that
-- ingest commits lock). The rules that make a lease safe (see src/cluster.rs):
--   * a lease is taken only when there is none or its holder expired, judged by this
--     server's clock (`now()`), so two instances never both hold one;
--   * its holder stops working the mailbox before it could expire (it counts from the
--     moment it sent the renewal), and every ingest commit checks the lease in its own
--     transaction (FOR SHARE of the lease row, so a takeover waits for a commit in flight).
CREATE TABLE instances (
    id           text PRIMARY KEY CHECK (id <> ''),
    host         text NOT NULL,
    pid          integer NOT NULL,
    -- The kernel's boot id: with host and pid, lets a restarted instance tell that a
    -- predecessor on the same machine is dead and free its mailboxes at once.
    boot_id      text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    -- Its leases hold until then: the last heartbeat plus its lease_ttl.
    expires_at   timestamptz NOT NULL
);

CREATE TABLE mailbox_leases (
    -- The mailbox's name (from a config file or the `mailboxes` table).
    mailbox     text PRIMARY KEY,
    instance_id text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailbox_leases_instance_idx ON mailbox_leases (instance_id);
