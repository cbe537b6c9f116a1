-- Mailboxes managed at run time (`collabctl mailbox add`), beside the file's
-- `[[mailboxes]]`. `settings` is the same `MailboxSettings` as a file entry, as JSON, and
-- is validated by the same code before it gets here. Every change NOTIFYs
-- `collabd_mailboxes` with the name, so running daemons apply it within a second.
CREATE TABLE mailboxes (
    name       text PRIMARY KEY CHECK (name <> ''),
    settings   jsonb NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION mailboxes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('collabd_mailboxes', COALESCE(NEW.name, OLD.name));
    RETURN NULL;
END
$$;

CREATE TRIGGER mailboxes_notify AFTER INSERT OR UPDATE OR DELETE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION mailboxes_notify();
