//! Accounts and their API keys. A key is `cc_live_<key id>_<64 hex secret>`; only its
//! SHA-256 is stored, and the key id (the public prefix) finds the row to compare.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use subtle::ConstantTimeEq;

use super::{Db, RowExt, StoreResult};
use crate::domain::{Id, Timestamp};

pub const KEY_PREFIX: &str = "cc_live_";

#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    pub id: Id,
    pub account_id: Id,
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    /// The part of the key that may be shown again after creation.
    pub fn prefix(&self) -> String {
        format!("{KEY_PREFIX}{}", self.id)
    }
}

/// Who a request acts for, once its key checks out.
#[derive(Clone, Debug)]
pub struct Principal {
    pub account_id: Id,
    pub key_id: Id,
    pub last_used_at: Option<Timestamp>,
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Splits `cc_live_<id>_<secret>` into its id; `None` for anything malformed.
fn key_id_of(key: &str) -> Option<Id> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Id::parse(id).ok()
}

pub async fn find_account(db: &Db, name: &str) -> StoreResult<Option<Id>> {
    let row = sqlx::query("SELECT id FROM accounts WHERE name = $1").bind(name).fetch_optional(&db.read).await?;
    row.map(|r| r.text("id").map(Id::from_trusted)).transpose()
}

/// Returns the account's id, creating the account if it does not exist yet.
pub async fn ensure_account(db: &Db, name: &str) -> StoreResult<Id> {
    let id = Id::generate();
    // ON CONFLICT DO NOTHING is understood by both SQLite and PostgreSQL.
    sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(id.as_str())
        .bind(name)
        .bind(Timestamp::now().to_db())
        .execute(&db.write)
        .await?;
    let row = sqlx::query("SELECT id FROM accounts WHERE name = $1").bind(name).fetch_one(&db.write).await?;
    Ok(Id::from_trusted(row.text("id")?))
}

/// Creates a key and returns its record and the secret key, which is never stored.
pub async fn create_key(db: &Db, account_id: &Id, name: Option<&str>) -> StoreResult<(ApiKeyRecord, String)> {
    let id = Id::generate();
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{id}_{}", hex::encode(secret));
    let now = Timestamp::now();
    sqlx::query("INSERT INTO api_keys (id, account_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.as_str())
        .bind(account_id.as_str())
        .bind(name.map(str::to_owned))
        .bind(hash_key(&key))
        .bind(now.to_db())
        .execute(&db.write)
        .await?;
    let record = ApiKeyRecord {
        id,
        account_id: account_id.clone(),
        name: name.map(str::to_owned),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    Ok((record, key))
}

fn key_from_row(row: &sqlx::any::AnyRow) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: Id::from_trusted(row.text("id")?),
        account_id: Id::from_trusted(row.text("account_id")?),
        name: row.opt_text("name")?,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        last_used_at: row.opt_time("last_used_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

const KEY_COLUMNS: &str = "id, account_id, name, created_at, last_used_at, revoked_at";

pub async fn list_keys(db: &Db, account_id: &Id) -> StoreResult<Vec<ApiKeyRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC, id DESC"
    )))
    .bind(account_id.as_str())
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(key_from_row).collect()
}

pub async fn get_key(db: &Db, key_id: &Id) -> StoreResult<Option<ApiKeyRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1")))
        .bind(key_id.as_str())
        .fetch_optional(&db.write)
        .await?;
    row.as_ref().map(key_from_row).transpose()
}

/// Revokes a key (idempotently); `account_id` limits it to that account's keys.
pub async fn revoke_key(db: &Db, key_id: &Id, account_id: Option<&Id>) -> StoreResult<Option<ApiKeyRecord>> {
    let Some(record) = get_key(db, key_id).await? else { return Ok(None) };
    if account_id.is_some_and(|a| *a != record.account_id) {
        return Ok(None);
    }
    if record.revoked_at.is_none() {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(Timestamp::now().to_db())
            .bind(key_id.as_str())
            .execute(&db.write)
            .await?;
    }
    get_key(db, key_id).await
}

/// Checks a presented key. Revocation is read from the database on every request,
/// so it takes effect at once on every gateway node.
pub async fn authenticate(db: &Db, key: &str) -> StoreResult<Option<Principal>> {
    let Some(key_id) = key_id_of(key) else { return Ok(None) };
    let row = sqlx::query("SELECT account_id, secret_hash, revoked_at, last_used_at FROM api_keys WHERE id = $1")
        .bind(key_id.as_str())
        .fetch_optional(&db.read)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored = row.text("secret_hash")?;
    let presented = hash_key(key);
    if !bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) || row.opt_text("revoked_at")?.is_some() {
        return Ok(None);
    }
    Ok(Some(Principal {
        account_id: Id::from_trusted(row.text("account_id")?),
        key_id,
        last_used_at: row.opt_time("last_used_at")?,
    }))
}

pub async fn touch_key(db: &Db, key_id: &Id) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(Timestamp::now().to_db())
        .bind(key_id.as_str())
        .execute(&db.write)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_come_only_from_well_formed_keys() {
        let id = Id::generate();
        let good = format!("{KEY_PREFIX}{id}_{}", "ab".repeat(32));
        assert_eq!(key_id_of(&good), Some(id.clone()));
        assert_eq!(key_id_of(&good[..good.len() - 1]), None);
        assert_eq!(key_id_of(&format!("sk_live_{id}_{}", "ab".repeat(32))), None);
        assert_eq!(key_id_of(""), None);
    }
}
