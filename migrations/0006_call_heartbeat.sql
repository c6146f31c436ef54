-- A live call's session writes a heartbeat on its leg; a call whose heartbeat stopped (the
-- gateway process died) is closed by any node's dispatcher, keeping what was recorded.
ALTER TABLE call_legs ADD COLUMN heartbeat_at TEXT;
CREATE INDEX calls_status_updated ON calls (status, updated_at);
