-- Carrier accounts that belong to an account (`/v1/carriers`): today a Twilio account SID
-- with its auth token, sealed with the gateway's secret key (src/secrets.rs), never shown.
CREATE TABLE carriers (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL,
    name TEXT,
    -- A Twilio account belongs to one of our accounts at most, so a webhook it signs
    -- routes to exactly one account.
    twilio_account_sid TEXT NOT NULL,
    auth_token_sealed TEXT NOT NULL,
    -- `From` for this carrier's calls that have no callerId (a number it owns).
    caller_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX carriers_twilio_account ON carriers (twilio_account_sid);
-- One carrier of each kind per account: its calls and numbers never need to choose.
CREATE UNIQUE INDEX carriers_account_kind ON carriers (account_id, kind);

-- A number is now unique per route, not worldwide: `twilio:<carrier id or default>:<phone>`
-- (the carrier account that owns it), `simulator:<account id>:<phone>` (the virtual carrier
-- has no owners, so one account's simulator number cannot block another's real one).
ALTER TABLE phone_numbers ADD COLUMN carrier_id TEXT REFERENCES carriers(id);
ALTER TABLE phone_numbers ADD COLUMN route TEXT;
UPDATE phone_numbers SET route = CASE carrier
    WHEN 'twilio' THEN 'twilio:default:' || phone
    ELSE 'simulator:' || account_id || ':' || phone
END;
DROP INDEX phone_numbers_phone;
CREATE UNIQUE INDEX phone_numbers_route ON phone_numbers (route);
CREATE INDEX phone_numbers_phone ON phone_numbers (phone);

-- The carrier account a leg was placed or received on (NULL: the gateway's default).
ALTER TABLE call_legs ADD COLUMN carrier_id TEXT;
