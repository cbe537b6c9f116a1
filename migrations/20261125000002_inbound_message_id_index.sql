-- Looking a message up by its Message-ID (support, the benchmark's latency probe) must not
-- scan the whole table.
CREATE INDEX inbound_message_id_idx ON inbound_messages (message_id);
