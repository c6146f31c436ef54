-- Inbound phone numbers. A number belongs to exactly one account (unique across all
-- accounts), so an inbound call to it routes to one account, template and carrier.

CREATE TABLE phone_numbers (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    phone TEXT NOT NULL,
    template_id TEXT NOT NULL REFERENCES templates(id),
    variables TEXT NOT NULL,
    carrier TEXT NOT NULL,
    name TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX phone_numbers_phone ON phone_numbers (phone);
CREATE INDEX phone_numbers_account_created ON phone_numbers (account_id, created_at, id);
CREATE INDEX phone_numbers_template ON phone_numbers (template_id, account_id);
