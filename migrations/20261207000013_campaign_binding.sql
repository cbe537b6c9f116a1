-- A campaign's mailbox binding, said once for every query that reads it (issue #21: the
-- same subqueries were written out eleven times).
--
-- campaign_binding(c): the mailboxes campaign c is bound to, by name; empty when unbound.
CREATE FUNCTION campaign_binding(c bigint) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT array(SELECT b.mailbox FROM campaign_mailboxes b
                 WHERE b.campaign_id = c ORDER BY b.mailbox)
$$;

-- campaign_takes(c, m): whether mail arriving in mailbox m may match campaign c's
-- outreach: c is unbound, or bound to m among others.
CREATE FUNCTION campaign_takes(c bigint, m text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM campaign_mailboxes b WHERE b.campaign_id = c)
        OR EXISTS (SELECT 1 FROM campaign_mailboxes b WHERE b.campaign_id = c AND b.mailbox = m)
$$;
