-- A call leg's media stream token is handed out once: a replayed signed webhook (Twilio's
-- signatures carry no timestamp) must not mint a second token that replaces the first.
ALTER TABLE call_legs ADD COLUMN stream_token_issued_at TEXT;
