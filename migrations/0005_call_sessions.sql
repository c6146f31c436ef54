-- What a call leaves behind beyond its row in `calls`: the carrier leg, the single-use
-- token that admits its media stream, the transcript and the recording.

-- The dispatcher's scan: due calls of every account, oldest first.
CREATE INDEX calls_status_effective ON calls (status, effective_at, id);

CREATE TABLE call_legs (
    call_id TEXT PRIMARY KEY REFERENCES calls(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    carrier TEXT NOT NULL,
    -- The carrier's id for the call (Twilio's CallSid), once it has one.
    carrier_call_id TEXT,
    -- Hash of the single-use token the media stream must present; NULL once used.
    stream_token_hash TEXT,
    stream_token_expires_at TEXT,
    answered_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX call_legs_carrier_call ON call_legs (carrier, carrier_call_id);

CREATE TABLE call_transcripts (
    call_id TEXT PRIMARY KEY REFERENCES calls(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    -- JSON array of turns: {speaker, text, start, end, confidence}.
    turns TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE call_recordings (
    call_id TEXT PRIMARY KEY REFERENCES calls(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    -- Path of the WAV file under the data directory.
    path TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
