-- Where each audience member stands in its campaign's dialing: `pending` (to call, from
-- next_attempt_at on), `calling` (last_call_id is under way), `done` (reached, cancelled,
-- out of attempts, or skipped as do-not-call). `attempts` and `last_attempt_at` exist since 0001.
ALTER TABLE campaign_contacts ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE campaign_contacts ADD COLUMN next_attempt_at TEXT;
ALTER TABLE campaign_contacts ADD COLUMN last_call_id TEXT;
CREATE INDEX campaign_contacts_state ON campaign_contacts (campaign_id, state, next_attempt_at);
-- One gateway node dials a campaign at a time: the one whose lease has not run out.
ALTER TABLE campaigns ADD COLUMN dialer_node TEXT;
ALTER TABLE campaigns ADD COLUMN dialer_lease_until TEXT;
CREATE INDEX campaigns_status ON campaigns (status);
-- When a callee asked to be called back (outcome callbackRequested with a time said).
ALTER TABLE calls ADD COLUMN callback_at TEXT;
