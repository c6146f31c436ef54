//! What the campaign dialer reads and writes: the campaigns it may dial, the lease that lets
//! one gateway node dial a campaign at a time, and each audience member's dialing state
//! (`campaign_contacts.state`: pending, calling, done; migration 0007).
//!
//! Every write is conditional on the state it was decided from, so a node that lost its lease
//! mid-pass, or two passes that overlap, can neither call a contact twice nor undo a decision.

use sqlx::AssertSqlSafe;

use super::calls::{self, Call, NewCall};
use super::campaigns::{COLUMNS, Campaign, from_row};
use super::{Db, RowExt, StoreResult};
use crate::domain::status::{CallStatus, CampaignStatus, Outcome};
use crate::domain::{Id, Timestamp};

const PENDING: &str = "pending";
const CALLING: &str = "calling";
const DONE: &str = "done";

/// Campaigns the dialer looks at: `active` ones, and `scheduled` ones (which start by
/// themselves when their schedule's `startDate` comes), with their account.
pub async fn live_campaigns(db: &Db) -> StoreResult<Vec<(Id, Campaign)>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT account_id, {COLUMNS} FROM campaigns WHERE status IN ($1, $2) ORDER BY created_at, id"
    )))
    .bind(CampaignStatus::Active.as_str())
    .bind(CampaignStatus::Scheduled.as_str())
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|row| Ok((Id::from_trusted(row.text("account_id")?), from_row(row)?))).collect()
}

/// Takes or renews the lease on an active campaign for `node` until `until`. Only one node
/// holds it at a time; a node that stops renewing (it died) loses it when `until` passes.
pub async fn claim(db: &Db, campaign_id: &Id, node: &str, now: Timestamp, until: Timestamp) -> StoreResult<bool> {
    let updated = sqlx::query(
        "UPDATE campaigns SET dialer_node = $1, dialer_lease_until = $2 WHERE id = $3 AND status = $4 \
         AND (dialer_lease_until IS NULL OR dialer_lease_until < $5 OR dialer_node = $1)",
    )
    .bind(node)
    .bind(until.to_db())
    .bind(campaign_id.as_str())
    .bind(CampaignStatus::Active.as_str())
    .bind(now.to_db())
    .execute(&db.write)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// A contact whose campaign call was started, with that call's state now.
#[derive(Clone, Debug)]
pub struct Calling {
    pub contact_id: Id,
    pub attempts: i64,
    pub call_id: Id,
    /// `None` when the call row is gone (deleted with its account data).
    pub call_status: Option<CallStatus>,
    pub outcome: Option<Outcome>,
    pub callback_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

pub async fn calling(db: &Db, campaign_id: &Id) -> StoreResult<Vec<Calling>> {
    let rows = sqlx::query(
        "SELECT cc.contact_id, cc.attempts, cc.last_call_id, c.status, c.outcome, c.callback_at, c.ended_at \
         FROM campaign_contacts cc LEFT JOIN calls c ON c.id = cc.last_call_id \
         WHERE cc.campaign_id = $1 AND cc.state = $2",
    )
    .bind(campaign_id.as_str())
    .bind(CALLING)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Calling {
                contact_id: Id::from_trusted(row.text("contact_id")?),
                attempts: row.int("attempts")?,
                call_id: Id::from_trusted(row.opt_text("last_call_id")?.unwrap_or_default()),
                call_status: row.opt_text("status")?.as_deref().and_then(CallStatus::parse),
                outcome: row.opt_text("outcome")?.as_deref().and_then(Outcome::parse),
                callback_at: row.opt_time("callback_at")?,
                ended_at: row.opt_time("ended_at")?,
            })
        })
        .collect()
}

/// Settles a contact whose call `call_id` ended: `retry_at` puts it back in line for then,
/// `None` marks it done.
pub async fn settle(
    db: &Db,
    campaign_id: &Id,
    contact_id: &Id,
    call_id: &Id,
    retry_at: Option<Timestamp>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE campaign_contacts SET state = $1, next_attempt_at = $2 \
         WHERE campaign_id = $3 AND contact_id = $4 AND state = $5 AND last_call_id = $6",
    )
    .bind(if retry_at.is_some() { PENDING } else { DONE })
    .bind(retry_at.map(Timestamp::to_db))
    .bind(campaign_id.as_str())
    .bind(contact_id.as_str())
    .bind(CALLING)
    .bind(call_id.as_str())
    .execute(&db.write)
    .await?;
    Ok(())
}

/// How many of the audience have a call under way, and how many are still to call (now or
/// at a later retry time).
pub async fn counts(db: &Db, campaign_id: &Id) -> StoreResult<(i64, i64)> {
    let row = sqlx::query(
        "SELECT CAST(SUM(CASE WHEN state = $2 THEN 1 ELSE 0 END) AS BIGINT) AS calling, \
         CAST(SUM(CASE WHEN state = $3 THEN 1 ELSE 0 END) AS BIGINT) AS pending \
         FROM campaign_contacts WHERE campaign_id = $1",
    )
    .bind(campaign_id.as_str())
    .bind(CALLING)
    .bind(PENDING)
    .fetch_one(&db.read)
    .await?;
    Ok((row.opt_int("calling")?.unwrap_or(0), row.opt_int("pending")?.unwrap_or(0)))
}

/// Up to `limit` contacts due for a call at `now`, those not yet tried first (then in a stable
/// order); with the attempts each has had.
pub async fn due(db: &Db, campaign_id: &Id, now: Timestamp, limit: usize) -> StoreResult<Vec<(Id, i64)>> {
    let rows = sqlx::query(
        "SELECT contact_id, attempts FROM campaign_contacts \
         WHERE campaign_id = $1 AND state = $2 AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
         ORDER BY attempts, contact_id LIMIT $4",
    )
    .bind(campaign_id.as_str())
    .bind(PENDING)
    .bind(now.to_db())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|row| Ok((Id::from_trusted(row.text("contact_id")?), row.int("attempts")?))).collect()
}

/// Marks a pending contact done without calling it (do-not-call, or deleted).
pub async fn skip(db: &Db, campaign_id: &Id, contact_id: &Id) -> StoreResult<()> {
    sqlx::query("UPDATE campaign_contacts SET state = $1 WHERE campaign_id = $2 AND contact_id = $3 AND state = $4")
        .bind(DONE)
        .bind(campaign_id.as_str())
        .bind(contact_id.as_str())
        .bind(PENDING)
        .execute(&db.write)
        .await?;
    Ok(())
}

/// Creates the contact's next campaign call and marks the contact `calling`, in one
/// transaction, only if the contact is still pending after `attempts` attempts; `None` when
/// another pass got there first.
pub async fn start_call(
    db: &Db,
    account_id: &Id,
    campaign_id: &Id,
    contact_id: &Id,
    attempts: i64,
    new: NewCall,
    now: Timestamp,
) -> StoreResult<Option<Call>> {
    let mut tx = db.write.begin().await?;
    let call = calls::insert(&mut tx, account_id, new, now).await?;
    let claimed = sqlx::query(
        "UPDATE campaign_contacts SET state = $1, attempts = attempts + 1, last_attempt_at = $2, \
         last_call_id = $3, next_attempt_at = NULL \
         WHERE campaign_id = $4 AND contact_id = $5 AND state = $6 AND attempts = $7",
    )
    .bind(CALLING)
    .bind(now.to_db())
    .bind(call.id.as_str())
    .bind(campaign_id.as_str())
    .bind(contact_id.as_str())
    .bind(PENDING)
    .bind(attempts)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed != 1 {
        // Dropping the transaction rolls the call back.
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(call))
}
