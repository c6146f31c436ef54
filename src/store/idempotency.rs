//! Stored responses for `Idempotency-Key` replays (Stripe semantics, kept 24 h).

use super::{Db, RowExt, StoreResult};
use crate::domain::{Id, Timestamp};

pub const RETENTION_SECONDS: i64 = 24 * 3600;

pub enum Claim {
    /// The key is new: the caller runs the request and then calls `complete` or `release`.
    Claimed,
    /// The key was used before with this request hash and this stored response.
    Replay { status: u16, body: String },
    /// The key was used before with another request.
    Mismatch,
    /// The first request with this key has not finished.
    InFlight,
}

pub async fn claim(db: &Db, account_id: &Id, key: &str, request_hash: &str) -> StoreResult<Claim> {
    let now = Timestamp::now();
    let expired_before = now.plus_seconds(-RETENTION_SECONDS).to_db();
    sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2 AND created_at < $3")
        .bind(account_id.as_str())
        .bind(key)
        .bind(expired_before)
        .execute(&db.write)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (account_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account_id, idem_key) DO NOTHING",
    )
    .bind(account_id.as_str())
    .bind(key)
    .bind(request_hash)
    .bind(now.to_db())
    .execute(&db.write)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    let row = sqlx::query(
        "SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2",
    )
    .bind(account_id.as_str())
    .bind(key)
    .fetch_optional(&db.write)
    .await?;
    let Some(row) = row else { return Ok(Claim::InFlight) };
    if row.text("request_hash")? != request_hash {
        return Ok(Claim::Mismatch);
    }
    match (row.opt_int("status_code")?, row.opt_text("response_body")?) {
        (Some(status), Some(body)) => Ok(Claim::Replay { status: status as u16, body }),
        _ => Ok(Claim::InFlight),
    }
}

pub async fn complete(db: &Db, account_id: &Id, key: &str, status: u16, body: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = $1, response_body = $2 WHERE account_id = $3 AND idem_key = $4",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(account_id.as_str())
    .bind(key)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Forgets a claim whose request failed on our side, so a retry runs again.
pub async fn release(db: &Db, account_id: &Id, key: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND idem_key = $2")
        .bind(account_id.as_str())
        .bind(key)
        .execute(&db.write)
        .await?;
    Ok(())
}

pub async fn purge_expired(db: &Db) -> StoreResult<u64> {
    let before = Timestamp::now().plus_seconds(-RETENTION_SECONDS).to_db();
    Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(&db.write)
        .await?
        .rows_affected())
}
