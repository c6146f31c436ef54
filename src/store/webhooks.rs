//! Webhook endpoints, the outbox's deliveries and their attempts.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Arg, Backend, Db, Page, PageRequest, RowExt, Sql, StoreResult, fetch_page, json_col};
use crate::domain::{Id, Timestamp};
use crate::webhooks::signing;

/// An endpoint as the API shows it (never with its secret).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: Id,
    #[schema(example = "https://example.com/hooks/callcenter")]
    pub url: String,
    pub description: Option<String>,
    #[schema(example = json!(["call.completed", "campaign.started"]))]
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why the endpoint was disabled, e.g. after failing for 5 days.
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed (null when the last one succeeded).
    pub failing_since: Option<Timestamp>,
    /// Until when the previous secret also signs deliveries (after a rotation).
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str = "id, url, description, events, enabled, disabled_reason, failing_since, \
                       previous_secret_expires_at, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: Id::from_trusted(row.text("id")?),
        url: row.text("url")?,
        description: row.opt_text("description")?,
        events: json_col(row, "events")?,
        enabled: row.int("enabled")? != 0,
        disabled_reason: row.opt_text("disabled_reason")?,
        failing_since: row.opt_time("failing_since")?,
        previous_secret_expires_at: row.opt_time("previous_secret_expires_at")?,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub enabled: bool,
}

/// Creates an endpoint and returns it with its secret (shown once).
pub async fn create(
    db: &Db,
    account_id: &Id,
    new: NewEndpoint,
    now: Timestamp,
) -> StoreResult<(WebhookEndpoint, String)> {
    let id = Id::generate();
    let secret = signing::generate_secret();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, account_id, url, description, events, enabled, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(id.as_str())
    .bind(account_id.as_str())
    .bind(new.url.clone())
    .bind(new.description.clone())
    .bind(serde_json::to_string(&new.events).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(new.enabled))
    .bind(secret.clone())
    .bind(now.to_db())
    .execute(&db.write)
    .await?;
    let endpoint =
        get(db, account_id, &id).await?.ok_or_else(|| super::StoreError::Corrupt("endpoint vanished".into()))?;
    Ok((endpoint, secret))
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<WebhookEndpoint>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE account_id = $1 AND id = $2"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&db.write)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db, account_id: &Id, page: PageRequest) -> StoreResult<Page<WebhookEndpoint>> {
    let mut sql = Sql::new("FROM webhook_endpoints WHERE account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    let (rows, total) = fetch_page(&db.read, COLUMNS, &sql, "created_at DESC, id DESC", page).await?;
    Ok(Page { items: rows.iter().map(from_row).collect::<StoreResult<_>>()?, total })
}

#[derive(Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

pub async fn update(
    db: &Db,
    account_id: &Id,
    id: &Id,
    patch: EndpointPatch,
    now: Timestamp,
) -> StoreResult<Option<WebhookEndpoint>> {
    let Some(mut e) = get(db, account_id, id).await? else { return Ok(None) };
    if let Some(url) = patch.url {
        e.url = url;
    }
    if let Some(d) = patch.description {
        e.description = d;
    }
    if let Some(ev) = patch.events {
        e.events = ev;
    }
    // Re-enabling clears the failure record so the 5-day window starts afresh.
    let reenabled = patch.enabled == Some(true) && !e.enabled;
    if let Some(en) = patch.enabled {
        e.enabled = en;
    }
    sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, enabled = $4, updated_at = $5, \
         disabled_reason = CASE WHEN $6 = 1 THEN NULL ELSE disabled_reason END, \
         failing_since = CASE WHEN $6 = 1 THEN NULL ELSE failing_since END \
         WHERE account_id = $7 AND id = $8",
    )
    .bind(e.url.clone())
    .bind(e.description.clone())
    .bind(serde_json::to_string(&e.events).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(e.enabled))
    .bind(now.to_db())
    .bind(i64::from(reenabled))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .execute(&db.write)
    .await?;
    get(db, account_id, id).await
}

pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<bool> {
    let mut tx = db.write.begin().await?;
    let exists = sqlx::query("SELECT id FROM webhook_endpoints WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        for sql in [
            "DELETE FROM webhook_attempts WHERE endpoint_id = $1",
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
            "DELETE FROM webhook_endpoints WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(exists)
}

/// Issues a new secret; the old one keeps signing (beside the new) for 24 hours.
pub async fn rotate_secret(
    db: &Db,
    account_id: &Id,
    id: &Id,
    now: Timestamp,
) -> StoreResult<Option<(String, Timestamp)>> {
    let secret = signing::generate_secret();
    let expires = now.plus_seconds(24 * 3600);
    let updated = sqlx::query(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $1, secret = $2, \
         updated_at = $3 WHERE account_id = $4 AND id = $5",
    )
    .bind(expires.to_db())
    .bind(secret.clone())
    .bind(now.to_db())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .execute(&db.write)
    .await?
    .rows_affected();
    Ok((updated == 1).then_some((secret, expires)))
}

/// One delivery attempt as `GET /v1/webhooks/{id}/deliveries` lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub id: Id,
    pub delivery_id: Id,
    #[schema(example = "evt_60a2e7f3b9c1a83e94d8f2f1")]
    pub event_id: String,
    #[schema(example = "call.completed")]
    pub event_type: String,
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status, or null when no response came.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// When the next attempt is due, or null when this was the last one.
    pub next_retry_at: Option<Timestamp>,
    /// The delivery's state now: pending, succeeded or failed.
    #[schema(example = "succeeded")]
    pub delivery_status: String,
}

pub async fn list_attempts(
    db: &Db,
    account_id: &Id,
    endpoint_id: &Id,
    page: PageRequest,
) -> StoreResult<Page<DeliveryAttempt>> {
    let mut sql = Sql::new(
        "FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
         JOIN webhook_events e ON e.id = a.event_id WHERE d.account_id = ",
    );
    let acc = sql.arg(account_id.as_str());
    sql.push(&acc);
    sql.push_with(" AND a.endpoint_id = ?", [endpoint_id.as_str().into()]);
    let columns = "a.id AS id, a.delivery_id AS delivery_id, a.event_id AS event_id, e.type AS event_type, \
                   a.attempted_at AS attempted_at, a.status_code AS status_code, a.latency_ms AS latency_ms, \
                   a.error AS error, a.next_retry_at AS next_retry_at, d.status AS delivery_status";
    let (rows, total) = fetch_page(&db.read, columns, &sql, "a.attempted_at DESC, a.id DESC", page).await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(DeliveryAttempt {
                id: Id::from_trusted(r.text("id")?),
                delivery_id: Id::from_trusted(r.text("delivery_id")?),
                event_id: r.text("event_id")?,
                event_type: r.text("event_type")?,
                attempted_at: Timestamp::from_db(&r.text("attempted_at")?),
                status_code: r.opt_int("status_code")?,
                latency_ms: r.int("latency_ms")?,
                error: r.opt_text("error")?,
                next_retry_at: r.opt_time("next_retry_at")?,
                delivery_status: r.text("delivery_status")?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(Page { items, total })
}

/// Makes a delivery due again now (manual redelivery). False if it does not exist.
pub async fn retry_delivery(
    db: &Db,
    account_id: &Id,
    endpoint_id: &Id,
    delivery_id: &Id,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $1 WHERE account_id = $2 AND endpoint_id = $3 AND id = $4",
    )
    .bind(now.to_db())
    .bind(account_id.as_str())
    .bind(endpoint_id.as_str())
    .bind(delivery_id.as_str())
    .execute(&db.write)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// What a relay needs to send one delivery.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub id: Id,
    pub endpoint_id: Id,
    pub event_id: String,
    pub attempts: i64,
    pub url: String,
    pub enabled: bool,
    pub secret: String,
    /// Still signing during a rotation.
    pub previous_secret: Option<String>,
    pub payload: String,
}

/// Leases up to `limit` due deliveries to `owner` until `lease_until`. On PostgreSQL,
/// `FOR UPDATE SKIP LOCKED` lets several gateway processes claim concurrently without
/// ever taking the same row; SQLite has a single writer, so the UPDATE is already atomic.
pub async fn claim_due(
    db: &Db,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> StoreResult<Vec<DueDelivery>> {
    let lock = if db.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let claimed = sqlx::query(AssertSqlSafe(format!(
        "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN (\
           SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $3 \
           AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at LIMIT $4{lock}) \
         RETURNING id"
    )))
    .bind(owner)
    .bind(lease_until.to_db())
    .bind(now.to_db())
    .bind(limit)
    .fetch_all(&db.write)
    .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(
        "SELECT d.id AS id, d.endpoint_id AS endpoint_id, d.event_id AS event_id, d.attempts AS attempts, \
         w.url AS url, w.enabled AS enabled, w.secret AS secret, w.previous_secret AS previous_secret, \
         w.previous_secret_expires_at AS previous_secret_expires_at, e.payload AS payload \
         FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         JOIN webhook_events e ON e.id = d.event_id WHERE d.id IN (",
    );
    let claimed_ids = claimed.iter().map(|row| row.text("id")).collect::<StoreResult<Vec<_>>>()?;
    sql.push_list(claimed_ids.into_iter().map(Arg::from));
    sql.push(") ORDER BY d.next_attempt_at");
    let now_db = now.to_db();
    sql.query()
        .fetch_all(&db.write)
        .await?
        .iter()
        .map(|r| {
            let previous_valid = r.opt_text("previous_secret_expires_at")?.is_some_and(|t| t > now_db);
            Ok(DueDelivery {
                id: Id::from_trusted(r.text("id")?),
                endpoint_id: Id::from_trusted(r.text("endpoint_id")?),
                event_id: r.text("event_id")?,
                attempts: r.int("attempts")?,
                url: r.text("url")?,
                enabled: r.int("enabled")? != 0,
                secret: r.text("secret")?,
                previous_secret: if previous_valid { r.opt_text("previous_secret")? } else { None },
                payload: r.text("payload")?,
            })
        })
        .collect()
}

/// Re-checks and extends leases right before sending, for a batch of deliveries at
/// once; returns those still ours to send. A delivery is missing from the answer when
/// another relay took it over (our lease ran out) or its endpoint was disabled since the
/// claim (its lease then runs out and the next claim abandons it): it must not be sent.
pub async fn extend_leases(db: &Db, owner: &str, ids: &[Id], until: Timestamp) -> StoreResult<HashSet<Id>> {
    let mut ours = HashSet::new();
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new("UPDATE webhook_deliveries SET ");
        sql.push_with(
            "lease_until = ? WHERE lease_owner = ? AND status = 'pending' ",
            [until.to_db().into(), owner.into()],
        );
        sql.push(
            "AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = webhook_deliveries.endpoint_id AND w.enabled = 1) \
             AND id IN (",
        );
        sql.push_list(chunk.iter().map(|id| Arg::from(id.as_str())));
        sql.push(") RETURNING id");
        for row in sql.query().fetch_all(&db.write).await? {
            ours.insert(Id::from_trusted(row.text("id")?));
        }
    }
    Ok(ours)
}

/// Extends the leases `owner` still holds among `ids` (deliveries it is sending or has
/// queued), so they outlive a slow receiver but not the process.
pub async fn renew_leases(db: &Db, owner: &str, ids: &[Id], until: Timestamp) -> StoreResult<()> {
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new("UPDATE webhook_deliveries SET ");
        sql.push_with("lease_until = ? WHERE lease_owner = ? AND id IN (", [until.to_db().into(), owner.into()]);
        sql.push_list(chunk.iter().map(|id| Arg::from(id.as_str())));
        sql.push(")");
        sql.query().execute(&db.write).await?;
    }
    Ok(())
}

pub struct AttemptResult {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub succeeded: bool,
    /// When to try again after a failure; `None` gives up.
    pub next_attempt_at: Option<Timestamp>,
    /// Disable the endpoint if it has been failing since before this.
    pub disable_if_failing_since_before: Timestamp,
}

/// One finished attempt, to be recorded.
pub struct Attempt {
    pub delivery: DueDelivery,
    pub result: AttemptResult,
    /// When the attempt finished.
    pub at: Timestamp,
}

/// What a batch of attempts does to one endpoint's failure record.
#[derive(Default)]
struct EndpointOutcome {
    /// A success came: the failure streak (if any) ended.
    succeeded: bool,
    /// When the current streak began, if the last attempt in the batch failed and the
    /// streak began in this batch.
    failing_from: Option<Timestamp>,
    disable_before: Option<Timestamp>,
}

/// Records attempts and moves their deliveries and endpoints on, in one transaction
/// (a group commit: the relay records whatever finished while the previous batch was
/// being written, which keeps the single SQLite writer from becoming the bottleneck).
pub async fn record_attempts(db: &Db, attempts: &[Attempt]) -> StoreResult<()> {
    let Some(latest) = attempts.iter().map(|a| a.at).max() else { return Ok(()) };
    let mut tx = db.write.begin().await?;
    for chunk in attempts.chunks(200) {
        let mut insert = Sql::new(
            "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, attempted_at, status_code, latency_ms, \
             error, next_retry_at) VALUES ",
        );
        for (i, a) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            let (d, r) = (&a.delivery, &a.result);
            let next = if r.succeeded { None } else { r.next_attempt_at.map(|t| t.to_db()) };
            insert.push_with(
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    Id::generate().into_string().into(),
                    d.id.as_str().into(),
                    d.endpoint_id.as_str().into(),
                    d.event_id.as_str().into(),
                    a.at.to_db().into(),
                    r.status_code.map(i64::from).into(),
                    r.latency_ms.into(),
                    r.error.clone().into(),
                    next.into(),
                ],
            );
        }
        insert.query().execute(&mut *tx).await?;
    }
    // Successes share their new state, so one statement per status code covers them.
    let mut succeeded: BTreeMap<u16, Vec<Id>> = BTreeMap::new();
    let mut endpoints: BTreeMap<&str, EndpointOutcome> = BTreeMap::new();
    for a in attempts {
        let (d, r) = (&a.delivery, &a.result);
        let outcome = endpoints.entry(d.endpoint_id.as_str()).or_default();
        if r.succeeded {
            succeeded.entry(r.status_code.unwrap_or(200)).or_default().push(d.id.clone());
            outcome.succeeded = true;
            outcome.failing_from = None;
            continue;
        }
        outcome.failing_from.get_or_insert(a.at);
        outcome.disable_before = Some(r.disable_if_failing_since_before);
        let status = if r.next_attempt_at.is_some() { "pending" } else { "failed" };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
             lease_owner = NULL, lease_until = NULL, last_status_code = $3, last_error = $4, updated_at = $5 \
             WHERE id = $6",
        )
        .bind(status)
        .bind(r.next_attempt_at.map(|t| t.to_db()))
        .bind(r.status_code.map(i64::from))
        .bind(r.error.clone())
        .bind(a.at.to_db())
        .bind(d.id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    for (code, ids) in &succeeded {
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new("UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1, ");
            sql.push_with(
                "next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, last_status_code = ?, \
                 last_error = NULL, updated_at = ? WHERE id IN (",
                [i64::from(*code).into(), latest.to_db().into()],
            );
            sql.push_list(chunk.iter().map(|id| Arg::from(id.as_str())));
            sql.push(")");
            sql.query().execute(&mut *tx).await?;
        }
    }
    for (endpoint, outcome) in endpoints {
        // Attempts in a batch are in the order they finished: the last one decides.
        let query = match (outcome.succeeded, outcome.failing_from) {
            (true, None) => sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(endpoint),
            (true, Some(from)) => sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2")
                .bind(from.to_db())
                .bind(endpoint),
            (false, Some(from)) => {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2")
                    .bind(from.to_db())
                    .bind(endpoint)
            }
            (false, None) => continue,
        };
        query.execute(&mut *tx).await?;
        if let (Some(_), Some(before)) = (outcome.failing_from, outcome.disable_before) {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = 'deliveries failed continuously for 5 days', \
                 updated_at = $1 WHERE id = $2 AND enabled = 1 AND failing_since < $3",
            )
            .bind(latest.to_db())
            .bind(endpoint)
            .bind(before.to_db())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A delivery whose endpoint was disabled or deleted is closed without sending.
pub async fn abandon(db: &Db, delivery_id: &Id, reason: &str, now: Timestamp) -> StoreResult<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $2 WHERE id = $3",
    )
    .bind(reason)
    .bind(now.to_db())
    .bind(delivery_id.as_str())
    .execute(&db.write)
    .await?;
    Ok(())
}
