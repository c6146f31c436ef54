-- Portable schema (SQLite and PostgreSQL): TEXT ids of 24 hex chars, times as
-- fixed-width UTC text (text order = time order), JSON as TEXT, flags as BIGINT 0/1.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_keys_account ON api_keys (account_id, created_at);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    phone_valid BIGINT NOT NULL,
    email TEXT,
    company TEXT,
    tags TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    do_not_call BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX contacts_account_created ON contacts (account_id, created_at, id);
CREATE INDEX contacts_account_phone ON contacts (account_id, phone);

CREATE TABLE contact_tags (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_account_tag ON contact_tags (account_id, tag);

CREATE TABLE contact_lists (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX contact_lists_account_created ON contact_lists (account_id, created_at, id);

CREATE TABLE contact_list_members (
    list_id TEXT NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    added_at TEXT NOT NULL,
    PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX contact_list_members_contact ON contact_list_members (contact_id);

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    description TEXT,
    industry TEXT,
    steps TEXT NOT NULL,
    variables TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX templates_account_created ON templates (account_id, created_at, id);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    template_id TEXT NOT NULL,
    total_contacts BIGINT NOT NULL,
    schedule TEXT,
    call_settings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    last_run_at TEXT,
    ended_at TEXT
);
CREATE INDEX campaigns_account_created ON campaigns (account_id, created_at, id);
CREATE INDEX campaigns_template ON campaigns (template_id, status);

CREATE TABLE campaign_contacts (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    PRIMARY KEY (campaign_id, contact_id)
);

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    status TEXT NOT NULL,
    direction TEXT NOT NULL,
    phone TEXT NOT NULL,
    contact_id TEXT,
    template_id TEXT,
    campaign_id TEXT,
    variables TEXT NOT NULL,
    scheduled_at TEXT,
    caller_id TEXT,
    started_at TEXT,
    ended_at TEXT,
    duration BIGINT,
    recording_url TEXT,
    transcript_url TEXT,
    outcome TEXT,
    notes TEXT,
    -- The time a call is filed under for date filters and analytics:
    -- when it started, else when it is scheduled, else when it was created.
    effective_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Lists are newest first (created_at DESC, id DESC) and pick a page of ids from an
-- index alone before reading rows: the status and campaign filters read theirs in
-- order; a date range sorts only the (created_at, id) of its index entries.
CREATE INDEX calls_account_created ON calls (account_id, created_at, id);
CREATE INDEX calls_account_effective ON calls (account_id, effective_at, created_at, id);
CREATE INDEX calls_account_status ON calls (account_id, status, created_at, id);
CREATE INDEX calls_account_campaign ON calls (account_id, campaign_id, created_at, id);
CREATE INDEX calls_contact ON calls (contact_id, effective_at);
CREATE INDEX calls_campaign ON calls (campaign_id, status);
CREATE INDEX calls_template ON calls (template_id, account_id);

-- Calls per account and status, changed in the same transaction as every insert and
-- status change in store::calls, so list totals need no COUNT over a large account.
CREATE TABLE call_counts (
    account_id TEXT NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (account_id, status)
);

CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code BIGINT,
    response_body TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
