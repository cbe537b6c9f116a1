-- Creators are looked up by a bare handle too (`collabctl ... --creator alice`, outreach
-- imports): the (platform, handle) key cannot serve that without a platform.
CREATE INDEX creators_handle_idx ON creators (lower(handle));
