//! Campaigns: the campaign row, its audience (`campaign_contacts`, resolved once at
//! creation from contacts and contact lists), its call statistics, and status
//! transitions, each of which commits in one transaction.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::analytics::percent;
use super::calls;
use super::{Arg, Db, Page, PageRequest, RowExt, Sql, StoreError, StoreResult, fetch_page, json_col};
use crate::domain::schedule::Schedule;
use crate::domain::status::{CallStatus, CampaignStatus, Outcome};
use crate::domain::{Id, Timestamp};
use crate::webhooks::{self, EventType};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrySettings {
    /// Dial attempts per contact at most (1-10, default 3).
    #[schema(example = 3, minimum = 1, maximum = 10)]
    pub max_attempts: i64,
    /// Minutes between two attempts on the same contact (1-10080, default 60).
    #[schema(example = 60, minimum = 1, maximum = 10080)]
    pub retry_interval: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallSettings {
    /// Calls of this campaign in progress at once at most (1-100, default 10).
    #[schema(example = 10, minimum = 1, maximum = 100)]
    pub max_concurrent_calls: i64,
    /// E.164 number shown to the callee; `null` uses the account's default number.
    #[schema(example = "+15559876543")]
    pub caller_id: Option<String>,
    pub retry_settings: RetrySettings,
}

/// A campaign with its progress, as every campaign endpoint returns it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: Id,
    #[schema(example = "Summer Promotion")]
    pub name: String,
    #[schema(example = "Outreach for summer sale")]
    pub description: Option<String>,
    pub status: CampaignStatus,
    pub template_id: Id,
    /// Size of the audience: the contacts given directly plus the members of the
    /// given lists at creation time, each contact counted once.
    #[schema(example = 152)]
    pub total_contacts: i64,
    /// Calls of this campaign with status `completed`.
    #[schema(example = 45)]
    pub completed_calls: i64,
    /// Completed calls of this campaign with outcome `successful`.
    #[schema(example = 32)]
    pub successful_calls: i64,
    /// `completedCalls / totalContacts * 100`, rounded to one decimal (0 without contacts).
    #[schema(example = 29.6)]
    pub progress: f64,
    /// When to call; `null` means as soon as the campaign is active.
    pub schedule: Option<Schedule>,
    pub call_settings: CallSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the campaign first became `active`.
    pub started_at: Option<Timestamp>,
    /// When the most recent call of this campaign started.
    pub last_run_at: Option<Timestamp>,
    /// When the campaign became `completed` or `cancelled`.
    pub ended_at: Option<Timestamp>,
}

/// A validated campaign to create.
#[derive(Clone, Debug)]
pub struct NewCampaign {
    pub name: String,
    pub description: Option<String>,
    pub template_id: Id,
    pub contacts: Vec<Id>,
    pub contact_list_ids: Vec<Id>,
    pub schedule: Option<Schedule>,
    pub call_settings: CallSettings,
}

/// A reference in a [`NewCampaign`] that does not exist in the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingReference {
    Template,
    Contacts(Vec<Id>),
    ContactLists(Vec<Id>),
}

pub(super) const COLUMNS: &str = "id, name, description, status, template_id, total_contacts, schedule, call_settings, \
                       created_at, updated_at, started_at, ended_at";

pub(super) fn from_row(row: &AnyRow) -> StoreResult<Campaign> {
    let status = row.text("status")?;
    let schedule = row
        .opt_text("schedule")?
        .map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("schedule: {e}"))))
        .transpose()?;
    Ok(Campaign {
        id: Id::from_trusted(row.text("id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        status: CampaignStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status: {status}")))?,
        template_id: Id::from_trusted(row.text("template_id")?),
        total_contacts: row.int("total_contacts")?,
        completed_calls: 0,
        successful_calls: 0,
        progress: 0.0,
        schedule,
        call_settings: json_col(row, "call_settings")?,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
        started_at: row.opt_time("started_at")?,
        last_run_at: None,
        ended_at: row.opt_time("ended_at")?,
    })
}

/// Per-campaign call counters.
#[derive(Clone, Debug, Default)]
struct CallCounts {
    completed: i64,
    successful: i64,
    last_run_at: Option<Timestamp>,
}

impl Campaign {
    fn apply(&mut self, counts: CallCounts) {
        self.completed_calls = counts.completed;
        self.successful_calls = counts.successful;
        self.progress = percent(counts.completed, self.total_contacts);
        self.last_run_at = counts.last_run_at;
    }
}

/// Call counters of several campaigns in one grouped query.
async fn call_counts(db: &Db, account_id: &Id, ids: &[&Id]) -> StoreResult<HashMap<String, CallCounts>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let completed = CallStatus::Completed.as_str();
    let successful = Outcome::Successful.as_str();
    let mut sql = Sql::new(&format!(
        "SELECT campaign_id, \
         CAST(SUM(CASE WHEN status = '{completed}' THEN 1 ELSE 0 END) AS BIGINT) AS completed, \
         CAST(SUM(CASE WHEN status = '{completed}' AND outcome = '{successful}' THEN 1 ELSE 0 END) AS BIGINT) AS successful, \
         MAX(started_at) AS last_run_at \
         FROM calls WHERE account_id = "
    ));
    let a = sql.arg(account_id.as_str());
    sql.push(&a).push(" AND campaign_id IN (");
    sql.push_list(ids.iter().map(|id| Arg::from(id.as_str())));
    sql.push(") GROUP BY campaign_id");
    for row in sql.query().fetch_all(&db.read).await? {
        out.insert(
            row.text("campaign_id")?,
            CallCounts {
                completed: row.opt_int("completed")?.unwrap_or(0),
                successful: row.opt_int("successful")?.unwrap_or(0),
                last_run_at: row.opt_time("last_run_at")?,
            },
        );
    }
    Ok(out)
}

/// Keeps the first occurrence of each id, in order.
fn dedup(ids: &[Id]) -> Vec<Id> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Which of `ids` are not rows of `table` in the account (checked inside `tx`, so the
/// answer holds when the campaign commits).
async fn missing_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &'static str,
    account_id: &Id,
    ids: &[Id],
) -> StoreResult<Vec<Id>> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new(&format!("SELECT id FROM {table} WHERE account_id = "));
        let a = sql.arg(account_id.as_str());
        sql.push(&a).push(" AND id IN (");
        sql.push_list(chunk.iter().map(|id| Arg::from(id.as_str())));
        sql.push(")");
        for row in sql.query().fetch_all(&mut **tx).await? {
            found.insert(row.text("id")?);
        }
    }
    Ok(ids.iter().filter(|id| !found.contains(id.as_str())).cloned().collect())
}

/// Creates the campaign and its audience in one transaction, after checking that the
/// template, contacts and lists it names exist in the account.
pub async fn create(db: &Db, account_id: &Id, new: NewCampaign) -> StoreResult<Result<Campaign, MissingReference>> {
    let contacts = dedup(&new.contacts);
    let list_ids = dedup(&new.contact_list_ids);
    let mut tx = db.write.begin().await?;
    if !missing_ids(&mut tx, "templates", account_id, std::slice::from_ref(&new.template_id)).await?.is_empty() {
        return Ok(Err(MissingReference::Template));
    }
    let missing = missing_ids(&mut tx, "contacts", account_id, &contacts).await?;
    if !missing.is_empty() {
        return Ok(Err(MissingReference::Contacts(missing)));
    }
    let missing = missing_ids(&mut tx, "contact_lists", account_id, &list_ids).await?;
    if !missing.is_empty() {
        return Ok(Err(MissingReference::ContactLists(missing)));
    }

    let id = Id::generate();
    let now = Timestamp::now();
    let schedule_json = new.schedule.as_ref().map(serde_json::to_string).transpose().map_err(corrupt)?;
    let settings_json = serde_json::to_string(&new.call_settings).map_err(corrupt)?;
    // The campaign row comes first (campaign_contacts references it); its total is set
    // once the audience is in.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO campaigns (account_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10, NULL, NULL)"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .bind(new.name.clone())
    .bind(new.description.clone())
    .bind(CampaignStatus::Scheduled.as_str())
    .bind(new.template_id.as_str())
    .bind(schedule_json)
    .bind(settings_json)
    .bind(now.to_db())
    .bind(now.to_db())
    .execute(&mut *tx)
    .await?;

    for chunk in contacts.chunks(500) {
        let mut sql = Sql::new("INSERT INTO campaign_contacts (campaign_id, contact_id) VALUES ");
        for (i, contact) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push_with("(?, ?)", [id.as_str().into(), contact.as_str().into()]);
        }
        sql.push(" ON CONFLICT (campaign_id, contact_id) DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }
    if !list_ids.is_empty() {
        // Members already in the audience (given directly or in another list) conflict
        // and are skipped: that is the de-duplication.
        let mut sql = Sql::new("INSERT INTO campaign_contacts (campaign_id, contact_id) SELECT ");
        let campaign = sql.arg(id.as_str());
        sql.push(&campaign).push(
            ", m.contact_id FROM contact_list_members m JOIN contacts c ON c.id = m.contact_id WHERE c.account_id = ",
        );
        let a = sql.arg(account_id.as_str());
        sql.push(&a).push(" AND m.list_id IN (");
        sql.push_list(list_ids.iter().map(|list_id| Arg::from(list_id.as_str())));
        sql.push(") ON CONFLICT (campaign_id, contact_id) DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }
    let total = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaign_contacts WHERE campaign_id = $1")
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .int("n")?;
    sqlx::query("UPDATE campaigns SET total_contacts = $1 WHERE id = $2")
        .bind(total)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    Ok(Ok(Campaign {
        id,
        name: new.name,
        description: new.description,
        status: CampaignStatus::Scheduled,
        template_id: new.template_id,
        total_contacts: total,
        completed_calls: 0,
        successful_calls: 0,
        progress: 0.0,
        schedule: new.schedule,
        call_settings: new.call_settings,
        created_at: now,
        updated_at: now,
        started_at: None,
        last_run_at: None,
        ended_at: None,
    }))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<Campaign>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM campaigns WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut campaign = from_row(&row)?;
    let mut counts = call_counts(db, account_id, &[&campaign.id]).await?;
    campaign.apply(counts.remove(campaign.id.as_str()).unwrap_or_default());
    Ok(Some(campaign))
}

/// Campaigns newest first, optionally of one status, with their call counters.
pub async fn list(
    db: &Db,
    account_id: &Id,
    status: Option<CampaignStatus>,
    page: PageRequest,
) -> StoreResult<Page<Campaign>> {
    let mut sql = Sql::new("FROM campaigns WHERE account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(status) = status {
        sql.push_with(" AND status = ?", [status.as_str().into()]);
    }
    let (rows, total) = fetch_page(&db.read, COLUMNS, &sql, "created_at DESC, id DESC", page).await?;
    let mut items = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
    let mut counts = call_counts(db, account_id, &items.iter().map(|c| &c.id).collect::<Vec<_>>()).await?;
    for campaign in &mut items {
        let c = counts.remove(campaign.id.as_str()).unwrap_or_default();
        campaign.apply(c);
    }
    Ok(Page { items, total })
}

/// What a status change request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Done,
    NotFound,
    Illegal { from: CampaignStatus },
}

/// Moves a campaign to `to` if that is a legal transition from its current status.
///
/// Everything a transition changes commits in this one transaction: the campaign row,
/// the calls a cancellation cancels, and anything else that must never be seen without
/// the status change (or happen without it).
pub async fn transition(db: &Db, account_id: &Id, id: &Id, to: CampaignStatus) -> StoreResult<Transition> {
    let now_ts = Timestamp::now();
    let now = now_ts.to_db();
    let mut tx = db.write.begin().await?;
    let (from, name, total_contacts) = loop {
        let row = sqlx::query("SELECT status, name, total_contacts FROM campaigns WHERE account_id = $1 AND id = $2")
            .bind(account_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(Transition::NotFound) };
        let text = row.text("status")?;
        let from = CampaignStatus::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("status: {text}")))?;
        if !from.can_become(to) {
            return Ok(Transition::Illegal { from });
        }
        let mut sql = Sql::new("UPDATE campaigns SET ");
        sql.push_with("status = ?, updated_at = ?", [to.as_str().into(), now.clone().into()]);
        if to == CampaignStatus::Active {
            sql.push_with(", started_at = COALESCE(started_at, ?)", [now.clone().into()]);
        } else if matches!(to, CampaignStatus::Completed | CampaignStatus::Cancelled) {
            sql.push_with(", ended_at = ?", [now.clone().into()]);
        }
        // Conditional on the status just read: of two concurrent transitions only one
        // updates the row; the other sees 0 rows, re-reads and is judged again.
        sql.push_with(" WHERE id = ? AND status = ?", [id.as_str().into(), from.as_str().into()]);
        let updated = sql.query().execute(&mut *tx).await?.rows_affected();
        if updated == 1 {
            break (from, row.text("name")?, row.int("total_contacts")?);
        }
    };
    if to == CampaignStatus::Cancelled {
        calls::cancel_pending_of_campaign(&mut tx, account_id, id, now_ts).await?;
    }
    // The webhook event joins the same transaction (transactional outbox): it exists
    // exactly when the status change does.
    let event = match to {
        CampaignStatus::Active => Some(EventType::CampaignStarted),
        CampaignStatus::Paused => Some(EventType::CampaignPaused),
        CampaignStatus::Completed | CampaignStatus::Cancelled => Some(EventType::CampaignCompleted),
        CampaignStatus::Scheduled => None,
    };
    if let Some(event) = event {
        // Where the campaign stands, so a receiver needs no follow-up GET (read outside the
        // transaction: calls are not changed by it, except cancelled ones, which count in none).
        let totals = call_counts(db, account_id, &[id]).await?.remove(id.as_str()).unwrap_or_default();
        let data = serde_json::json!({
            "campaignId": id,
            "name": name,
            "status": to.as_str(),
            "previousStatus": from.as_str(),
            "totalContacts": total_contacts,
            "completedCalls": totals.completed,
            "successfulCalls": totals.successful,
        });
        webhooks::emit(&mut tx, account_id, event, data, now_ts).await?;
    }
    tx.commit().await?;
    Ok(Transition::Done)
}
