//! Calls: creation, reads, lists and status changes.
//!
//! Every insert and status change of a call goes through this module, because it keeps
//! `call_counts` (calls per account and status) exact in the same transaction: list
//! totals then cost one or a few rows instead of a COUNT over a large account.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};
use utoipa::ToSchema;

use super::{Db, Page, PageRequest, RowExt, Sql, StoreError, StoreResult, json_col};
use crate::domain::status::{CallDirection, CallStatus, Outcome};
use crate::domain::{Id, Phone, Timestamp};

/// A call, as the API shows it (`GET /calls/{id}`); every column of `calls`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub id: Id,
    #[serde(skip)]
    pub account_id: Id,
    pub status: CallStatus,
    #[schema(example = "+15551234567")]
    pub phone: String,
    pub contact_id: Option<Id>,
    pub template_id: Option<Id>,
    /// Set when a campaign placed the call.
    pub campaign_id: Option<Id>,
    /// The values the template's `{placeholders}` are filled with: those given on
    /// creation plus those derived from the contact.
    #[schema(example = json!({"companyName": "Acme Inc", "contactName": "John Smith", "productName": "Premium Widget"}))]
    pub variables: BTreeMap<String, String>,
    /// When the call is to be placed; `null` for "as soon as possible".
    #[serde(rename = "scheduled")]
    pub scheduled_at: Option<Timestamp>,
    #[schema(example = "+15559876543")]
    pub caller_id: Option<String>,
    pub direction: CallDirection,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Seconds from answer to hang-up.
    #[schema(example = 223)]
    pub duration: Option<i64>,
    #[serde(rename = "recording")]
    #[schema(example = "https://api.your-domain.com/recordings/60a2e7f3b9c1a83e94d8f2c3.mp3")]
    pub recording_url: Option<String>,
    #[serde(rename = "transcript")]
    #[schema(example = "https://api.your-domain.com/transcripts/60a2e7f3b9c1a83e94d8f2c3.json")]
    pub transcript_url: Option<String>,
    /// How the call went, set when it ends (`notes` says why in one sentence):
    /// - `successful`: the callee agreed (the last yes/no to a question was yes), or heard the
    ///   whole message of a script that asks nothing.
    /// - `rejected`: the callee said no (the last yes/no to a question was no); hanging up is
    ///   not a no.
    /// - `unsuccessful`: a person was reached but gave no clear answer: silence, unclear
    ///   answers, hung up without answering, cancelled or cut off at the time limit.
    /// - `callbackRequested`: the callee asked to be called back (`callbackAt` if they said when).
    /// - `optedOut`: the callee asked not to be called again; the contact is now `doNotCall`.
    /// - `voicemail`: an answering machine picked up; the template's voicemail message was left,
    ///   if it has one.
    /// - `noAnswer`: nobody picked up.
    /// - `busy`: the line was busy.
    /// - `failed`: the call could not be placed or connected, the connection was lost during
    ///   it, or the script's `next` links loop.
    pub outcome: Option<Outcome>,
    #[schema(example = "Customer expressed interest in the premium plan")]
    pub notes: Option<String>,
    /// With outcome `callbackRequested`: when the callee asked to be called back, if they
    /// said ("tomorrow at 3 pm": in the campaign's time zone, else UTC). Absent otherwise. A
    /// campaign calls the contact again then (within its calling hours and `maxAttempts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2025-05-21T15:00:00Z")]
    pub callback_at: Option<Timestamp>,
    /// The time date filters and analytics file the call under: when it started, else
    /// when it is scheduled, else when it was created.
    #[serde(skip)]
    pub effective_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A call to create, already validated.
#[derive(Clone, Debug)]
pub struct NewCall {
    pub status: CallStatus,
    pub direction: CallDirection,
    pub phone: Phone,
    pub contact_id: Option<Id>,
    pub template_id: Option<Id>,
    pub campaign_id: Option<Id>,
    pub variables: BTreeMap<String, String>,
    pub scheduled_at: Option<Timestamp>,
    pub caller_id: Option<Phone>,
}

const COLUMNS: &str = "id, account_id, status, direction, phone, contact_id, template_id, campaign_id, variables, \
     scheduled_at, caller_id, started_at, ended_at, duration, recording_url, transcript_url, outcome, notes, \
     callback_at, effective_at, created_at, updated_at";

fn corrupt(col: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{col}: unknown value '{value}'"))
}

fn from_row(row: &AnyRow) -> StoreResult<Call> {
    let status = row.text("status")?;
    let direction = row.text("direction")?;
    let outcome = row.opt_text("outcome")?;
    Ok(Call {
        id: Id::from_trusted(row.text("id")?),
        account_id: Id::from_trusted(row.text("account_id")?),
        status: CallStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        direction: CallDirection::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        phone: row.text("phone")?,
        contact_id: row.opt_text("contact_id")?.map(Id::from_trusted),
        template_id: row.opt_text("template_id")?.map(Id::from_trusted),
        campaign_id: row.opt_text("campaign_id")?.map(Id::from_trusted),
        variables: json_col(row, "variables")?,
        scheduled_at: row.opt_time("scheduled_at")?,
        caller_id: row.opt_text("caller_id")?,
        started_at: row.opt_time("started_at")?,
        ended_at: row.opt_time("ended_at")?,
        duration: row.opt_int("duration")?,
        recording_url: row.opt_text("recording_url")?,
        transcript_url: row.opt_text("transcript_url")?,
        outcome: outcome.map(|o| Outcome::parse(&o).ok_or_else(|| corrupt("outcome", &o))).transpose()?,
        notes: row.opt_text("notes")?,
        callback_at: row.opt_time("callback_at")?,
        effective_at: Timestamp::from_db(&row.text("effective_at")?),
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

/// Adds `delta` to the account's count of calls in `status`.
async fn bump_count(conn: &mut AnyConnection, account_id: &Id, status: CallStatus, delta: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO call_counts (account_id, status, n) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, status) DO UPDATE SET n = call_counts.n + excluded.n",
    )
    .bind(account_id.as_str())
    .bind(status.as_str())
    .bind(delta)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn create(db: &Db, account_id: &Id, new: NewCall) -> StoreResult<Call> {
    let mut tx = db.write.begin().await?;
    let call = insert(&mut tx, account_id, new, Timestamp::now()).await?;
    tx.commit().await?;
    Ok(call)
}

/// Inserts a call inside the caller's transaction (for code that creates calls
/// together with other rows, such as a campaign's dialer).
pub async fn insert(conn: &mut AnyConnection, account_id: &Id, new: NewCall, now: Timestamp) -> StoreResult<Call> {
    let call = Call {
        id: Id::generate(),
        account_id: account_id.clone(),
        status: new.status,
        phone: new.phone.as_str().to_owned(),
        contact_id: new.contact_id,
        template_id: new.template_id,
        campaign_id: new.campaign_id,
        variables: new.variables,
        scheduled_at: new.scheduled_at,
        caller_id: new.caller_id.map(|p| p.as_str().to_owned()),
        direction: new.direction,
        started_at: None,
        ended_at: None,
        duration: None,
        recording_url: None,
        transcript_url: None,
        outcome: None,
        notes: None,
        callback_at: None,
        effective_at: new.scheduled_at.unwrap_or(now),
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO calls (id, account_id, status, direction, phone, contact_id, template_id, campaign_id, \
         variables, scheduled_at, caller_id, effective_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(call.id.as_str())
    .bind(account_id.as_str())
    .bind(call.status.as_str())
    .bind(call.direction.as_str())
    .bind(call.phone.clone())
    .bind(call.contact_id.as_ref().map(|i| i.as_str().to_owned()))
    .bind(call.template_id.as_ref().map(|i| i.as_str().to_owned()))
    .bind(call.campaign_id.as_ref().map(|i| i.as_str().to_owned()))
    .bind(serde_json::to_string(&call.variables).unwrap_or_else(|_| "{}".into()))
    .bind(call.scheduled_at.map(|t| t.to_db()))
    .bind(call.caller_id.clone())
    .bind(call.effective_at.to_db())
    .bind(now.to_db())
    .bind(now.to_db())
    .execute(&mut *conn)
    .await?;
    bump_count(conn, account_id, call.status, 1).await?;
    Ok(call)
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<Call>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM calls WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: Option<CallStatus>,
    pub contact_id: Option<Id>,
    pub campaign_id: Option<Id>,
    /// Inclusive bounds on `effective_at`, at the API's one-second precision.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// Truncates to the whole second (times on the wire have no fractions).
fn whole_second(t: Timestamp) -> Timestamp {
    let s = t.as_jiff().as_second();
    jiff::Timestamp::from_second(s).map(Timestamp::from_jiff).unwrap_or(t)
}

/// Calls of the account, newest first (`created_at DESC, id DESC`).
pub async fn list(db: &Db, account_id: &Id, filter: &ListFilter, page: PageRequest) -> StoreResult<Page<Call>> {
    let mut sql = Sql::new("FROM calls WHERE account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(status) = filter.status {
        sql.push_with(" AND status = ?", [status.as_str().into()]);
    }
    if let Some(contact_id) = &filter.contact_id {
        sql.push_with(" AND contact_id = ?", [contact_id.as_str().into()]);
    }
    if let Some(campaign_id) = &filter.campaign_id {
        sql.push_with(" AND campaign_id = ?", [campaign_id.as_str().into()]);
    }
    if let Some(start) = filter.start {
        sql.push_with(" AND effective_at >= ?", [whole_second(start).to_db().into()]);
    }
    if let Some(end) = filter.end {
        // Inclusive of the whole last second: stored times carry microseconds.
        sql.push_with(" AND effective_at < ?", [whole_second(end).plus_seconds(1).to_db().into()]);
    }
    let total = if filter.contact_id.is_none()
        && filter.campaign_id.is_none()
        && filter.start.is_none()
        && filter.end.is_none()
    {
        let mut count =
            Sql::new("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM call_counts WHERE account_id = ");
        let a = count.arg(account_id.as_str());
        count.push(&a);
        if let Some(status) = filter.status {
            count.push_with(" AND status = ?", [status.as_str().into()]);
        }
        count.query().fetch_one(&db.read).await?.int("n")?
    } else {
        let mut count = Sql::new("SELECT CAST(COUNT(*) AS BIGINT) AS n ");
        count.push(sql.text());
        count.args = sql.args.clone();
        count.query().fetch_one(&db.read).await?.int("n")?
    };
    if page.offset() >= total {
        return Ok(Page { items: Vec::new(), total });
    }
    // The page's ids come from an index alone (rows skipped by OFFSET or sorted for a
    // date range are never read); only the page's rows are then fetched.
    let mut select = Sql::new(&format!("SELECT {COLUMNS} FROM calls WHERE id IN (SELECT id "));
    select.push(sql.text());
    select.args = sql.args.clone();
    let limit = select.arg(page.limit);
    let offset = select.arg(page.offset());
    select.push(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}) ORDER BY created_at DESC, id DESC"
    ));
    let rows = select.query().fetch_all(&db.read).await?;
    Ok(Page { items: rows.iter().map(from_row).collect::<StoreResult<_>>()?, total })
}

/// Moves a call from `from` to `to` if it is still in `from`: a compare-and-set, so
/// of two writers racing (an API cancel and the dialer) exactly one wins. Returns
/// whether this one did.
pub async fn transition(db: &Db, account_id: &Id, id: &Id, from: CallStatus, to: CallStatus) -> StoreResult<bool> {
    let mut tx = db.write.begin().await?;
    let changed =
        sqlx::query("UPDATE calls SET status = $1, updated_at = $2 WHERE account_id = $3 AND id = $4 AND status = $5")
            .bind(to.as_str())
            .bind(Timestamp::now().to_db())
            .bind(account_id.as_str())
            .bind(id.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if changed {
        // Always lock the two counter rows in the same order, so that opposite
        // transitions running at once cannot deadlock on PostgreSQL.
        let mut bumps = [(from, -1), (to, 1)];
        bumps.sort_by_key(|(s, _)| s.as_str());
        for (status, delta) in bumps {
            bump_count(&mut tx, account_id, status, delta).await?;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// Cancels every scheduled or queued call of a campaign inside the caller's transaction
/// (a campaign's cancellation), keeping the per-status counters exact.
pub async fn cancel_pending_of_campaign(
    conn: &mut AnyConnection,
    account_id: &Id,
    campaign_id: &Id,
    now: Timestamp,
) -> StoreResult<u64> {
    let mut cancelled = 0;
    for from in CallStatus::ALL.iter().copied().filter(|s| s.is_cancellable()) {
        let n = sqlx::query(
            "UPDATE calls SET status = $1, updated_at = $2 WHERE account_id = $3 AND campaign_id = $4 AND status = $5",
        )
        .bind(CallStatus::Cancelled.as_str())
        .bind(now.to_db())
        .bind(account_id.as_str())
        .bind(campaign_id.as_str())
        .bind(from.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n > 0 {
            let mut bumps = [(from, -(n as i64)), (CallStatus::Cancelled, n as i64)];
            bumps.sort_by_key(|(s, _)| s.as_str());
            for (status, delta) in bumps {
                bump_count(&mut *conn, account_id, status, delta).await?;
            }
        }
        cancelled += n;
    }
    Ok(cancelled)
}

/// Recomputes an account's per-status counters from the calls themselves (after a bulk
/// load that bypassed this module, or to repair drift).
pub async fn rebuild_counts(db: &Db, account_id: &Id) -> StoreResult<()> {
    let mut tx = db.write.begin().await?;
    sqlx::query("DELETE FROM call_counts WHERE account_id = $1").bind(account_id.as_str()).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO call_counts (account_id, status, n) \
         SELECT account_id, status, CAST(COUNT(*) AS BIGINT) FROM calls WHERE account_id = $1 GROUP BY account_id, status",
    )
    .bind(account_id.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub enum CancelOutcome {
    /// Cancelled; `was` is the status it had. A `ringing` or `in-progress` call still has to
    /// be hung up at the carrier (see `session::hang_up`).
    Cancelled {
        was: CallStatus,
    },
    NotFound,
    /// The call has already ended.
    NotCancellable(CallStatus),
}

/// Cancels a call that has not ended: a scheduled or queued call is never placed; a ringing
/// call is closed here (`endedAt`, notes) before it is answered; an in-progress call keeps
/// running until its session sees the cancellation and hangs up, then `finish` stores its
/// transcript and recording under the `cancelled` status.
pub async fn cancel(db: &Db, account_id: &Id, id: &Id, now: Timestamp) -> StoreResult<CancelOutcome> {
    let mut attempts = 0;
    loop {
        let row = sqlx::query("SELECT status FROM calls WHERE account_id = $1 AND id = $2")
            .bind(account_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&db.read)
            .await?;
        let Some(row) = row else { return Ok(CancelOutcome::NotFound) };
        let text = row.text("status")?;
        let current = CallStatus::parse(&text).ok_or_else(|| corrupt("status", &text))?;
        let live = matches!(current, CallStatus::Ringing | CallStatus::InProgress);
        if !current.is_cancellable() && !live {
            return Ok(CancelOutcome::NotCancellable(current));
        }
        if transition(db, account_id, id, current, CallStatus::Cancelled).await? {
            if current == CallStatus::Ringing {
                sqlx::query(
                    "UPDATE calls SET ended_at = $1, notes = $2, updated_at = $1 \
                     WHERE account_id = $3 AND id = $4 AND status = $5 AND ended_at IS NULL",
                )
                .bind(now.to_db())
                .bind("The call was cancelled while it was ringing.")
                .bind(account_id.as_str())
                .bind(id.as_str())
                .bind(CallStatus::Cancelled.as_str())
                .execute(&db.write)
                .await?;
            }
            return Ok(CancelOutcome::Cancelled { was: current });
        }
        // Another writer moved the call between the read and the update (e.g. the
        // dispatcher queued it): look again, but do not chase it forever.
        attempts += 1;
        if attempts == 3 {
            return Ok(CancelOutcome::NotCancellable(current));
        }
    }
}

/// Whether an in-progress call was cancelled (from any node) and its session should hang up.
pub async fn is_cancelled(db: &Db, id: &Id) -> StoreResult<bool> {
    let row = sqlx::query("SELECT status FROM calls WHERE id = $1").bind(id.as_str()).fetch_optional(&db.read).await?;
    Ok(match row {
        Some(row) => row.text("status")? == CallStatus::Cancelled.as_str(),
        None => false,
    })
}

/// A call the dispatcher may place now.
#[derive(Clone, Debug, PartialEq)]
pub struct DueCall {
    pub account_id: Id,
    pub id: Id,
    pub status: CallStatus,
}

fn due_call(row: &sqlx::any::AnyRow) -> StoreResult<DueCall> {
    let status = row.text("status")?;
    Ok(DueCall {
        account_id: Id::from_trusted(row.text("account_id")?),
        id: Id::from_trusted(row.text("id")?),
        status: CallStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
    })
}

/// Queued calls and scheduled calls whose time has come, of every account, oldest first.
/// Several gateway nodes may read the same rows; `transition` to `ringing` decides which
/// one places each call.
pub async fn due(db: &Db, now: Timestamp, limit: i64) -> StoreResult<Vec<DueCall>> {
    let rows = sqlx::query(
        "SELECT account_id, id, status FROM calls \
         WHERE status = 'queued' OR (status = 'scheduled' AND effective_at <= $1) \
         ORDER BY effective_at, id LIMIT $2",
    )
    .bind(now.to_db())
    .bind(limit)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(due_call).collect()
}

/// Live calls nobody is running any more: answered calls (also those cancelled while in
/// progress) whose session stopped writing its heartbeat before `silent_since`, and calls
/// still ringing since before `ringing_since` (no carrier report, no stream). Oldest first.
pub async fn orphaned(
    db: &Db,
    silent_since: Timestamp,
    ringing_since: Timestamp,
    limit: i64,
) -> StoreResult<Vec<DueCall>> {
    let rows = sqlx::query(
        "SELECT c.account_id, c.id, c.status FROM calls c LEFT JOIN call_legs l ON l.call_id = c.id \
         WHERE ((c.status = 'in-progress' OR (c.status = 'cancelled' AND c.started_at IS NOT NULL AND c.ended_at IS NULL)) \
                AND COALESCE(l.heartbeat_at, c.updated_at) < $1) \
            OR (c.status = 'ringing' AND c.updated_at < $2) \
         ORDER BY c.updated_at, c.id LIMIT $3",
    )
    .bind(silent_since.to_db())
    .bind(ringing_since.to_db())
    .bind(limit)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(due_call).collect()
}

/// The fields of a call that the webhook payloads carry (the spec's `data` object).
pub fn event_data(call: &Call) -> serde_json::Value {
    serde_json::json!({
        "callId": call.id,
        "contactId": call.contact_id,
        "campaignId": call.campaign_id,
        "phone": call.phone,
        "direction": call.direction,
        "status": call.status,
        "duration": call.duration,
        "outcome": call.outcome,
        "notes": call.notes,
        "recording": call.recording_url,
        "transcript": call.transcript_url,
        "callbackAt": call.callback_at,
    })
}

/// The callee answered: `ringing` -> `in-progress`, `startedAt` set, `call.started` emitted
/// in the same transaction. Returns the call, or `None` if it was no longer ringing (e.g.
/// cancelled meanwhile).
pub async fn mark_answered(db: &Db, account_id: &Id, id: &Id, at: Timestamp) -> StoreResult<Option<Call>> {
    let mut tx = db.write.begin().await?;
    let changed = sqlx::query(
        "UPDATE calls SET status = $1, started_at = $2, effective_at = $2, updated_at = $2 \
         WHERE account_id = $3 AND id = $4 AND status = $5",
    )
    .bind(CallStatus::InProgress.as_str())
    .bind(at.to_db())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .bind(CallStatus::Ringing.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !changed {
        return Ok(None);
    }
    let mut bumps = [(CallStatus::Ringing, -1), (CallStatus::InProgress, 1)];
    bumps.sort_by_key(|(s, _)| s.as_str());
    for (status, delta) in bumps {
        bump_count(&mut tx, account_id, status, delta).await?;
    }
    let call = get_in(&mut tx, account_id, id).await?.ok_or_else(|| StoreError::Corrupt("call vanished".into()))?;
    crate::webhooks::events::emit(
        &mut tx,
        account_id,
        crate::webhooks::events::EventType::CallStarted,
        event_data(&call),
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(call))
}

async fn get_in(conn: &mut AnyConnection, account_id: &Id, id: &Id) -> StoreResult<Option<Call>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM calls WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// How a call ended.
#[derive(Clone, Debug)]
pub struct CallEnd {
    /// `completed` or `failed`.
    pub status: CallStatus,
    pub outcome: Outcome,
    pub notes: Option<String>,
    pub ended_at: Timestamp,
    /// Seconds from answer to hang-up; `None` when never answered.
    pub duration: Option<i64>,
    pub recording_url: Option<String>,
    pub transcript_url: Option<String>,
    /// When the callee asked to be called back (outcome `callbackRequested` with a time).
    pub callback_at: Option<Timestamp>,
}

/// Ends a call that is ringing or in progress (or still queued, when placing it failed):
/// sets the final status, outcome, notes, times and links, and emits `call.completed` or
/// `call.failed` (plus `call.transcript.available` / `call.recording.available` when there
/// are links) in the same transaction. The transcript and recording rows are written in that
/// transaction too, so they exist exactly when the call says they do. Returns `None` when
/// the call had already ended.
pub async fn finish(
    db: &Db,
    account_id: &Id,
    id: &Id,
    end: CallEnd,
    artifacts: super::call_sessions::Artifacts,
) -> StoreResult<Option<Call>> {
    use crate::webhooks::events::{EventType, emit};
    let mut tx = db.write.begin().await?;
    let Some(current) = get_in(&mut tx, account_id, id).await? else { return Ok(None) };
    // An answered call cancelled through the API is still closed by its session: it keeps
    // the `cancelled` status and gets its outcome, transcript and recording.
    let cancelled_live =
        current.status == CallStatus::Cancelled && current.started_at.is_some() && current.ended_at.is_none();
    if !matches!(current.status, CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress) && !cancelled_live {
        return Ok(None);
    }
    let mut end = end;
    if cancelled_live {
        end.status = CallStatus::Cancelled;
    }
    super::call_sessions::insert_artifacts(&mut tx, account_id, id, artifacts, end.ended_at).await?;
    sqlx::query(
        "UPDATE calls SET status = $1, outcome = $2, notes = $3, ended_at = $4, duration = $5, \
         recording_url = $6, transcript_url = $7, updated_at = $4, callback_at = $11 \
         WHERE account_id = $8 AND id = $9 AND status = $10",
    )
    .bind(end.status.as_str())
    .bind(end.outcome.as_str())
    .bind(end.notes.clone())
    .bind(end.ended_at.to_db())
    .bind(end.duration)
    .bind(end.recording_url.clone())
    .bind(end.transcript_url.clone())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .bind(current.status.as_str())
    .bind(end.callback_at.map(Timestamp::to_db))
    .execute(&mut *tx)
    .await?;
    if current.status != end.status {
        let mut bumps = [(current.status, -1), (end.status, 1)];
        bumps.sort_by_key(|(s, _)| s.as_str());
        for (status, delta) in bumps {
            bump_count(&mut tx, account_id, status, delta).await?;
        }
    }
    let call = get_in(&mut tx, account_id, id).await?.ok_or_else(|| StoreError::Corrupt("call vanished".into()))?;
    let data = event_data(&call);
    // A call that was answered and then cancelled did end: `call.completed`, with
    // `status: "cancelled"` in its data.
    let kind = if matches!(end.status, CallStatus::Completed | CallStatus::Cancelled) {
        EventType::CallCompleted
    } else {
        EventType::CallFailed
    };
    emit(&mut tx, account_id, kind, data.clone(), end.ended_at).await?;
    if call.transcript_url.is_some() {
        emit(&mut tx, account_id, EventType::CallTranscriptAvailable, data.clone(), end.ended_at).await?;
    }
    if call.recording_url.is_some() {
        emit(&mut tx, account_id, EventType::CallRecordingAvailable, data, end.ended_at).await?;
    }
    tx.commit().await?;
    Ok(Some(call))
}
