-- Message text is compressed with lz4 where the server has it (PostgreSQL 14+ built with
-- lz4, as Debian's and the main cloud providers' are): pglz cost more CPU than the rest of
-- storing a message. Other servers keep pglz; nothing else depends on it.
DO $$
BEGIN
    ALTER TABLE inbound_messages
        ALTER COLUMN text_body SET COMPRESSION lz4,
        ALTER COLUMN reply_text SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR syntax_error OR undefined_object THEN
    RAISE NOTICE 'lz4 compression is not available; message text stays pglz-compressed';
END
$$;
