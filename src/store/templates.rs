//! Call templates: named scripts of steps with `{variable}` placeholders, and how
//! many calls use each one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::IgnoredAny;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{
    Backend, Db, Page, PageRequest, RowExt, Sql, StoreResult, fetch_page, json_col, like_pattern, phone_numbers,
};
use crate::domain::status::CampaignStatus;
use crate::domain::template::{Step, placeholders};
use crate::domain::{Id, Timestamp};

/// A template as `GET /templates/{id}` returns it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub id: Id,
    #[schema(example = "Sales Outreach")]
    pub name: String,
    #[schema(example = "Template for initial sales calls")]
    pub description: Option<String>,
    #[schema(example = "sales")]
    pub industry: Option<String>,
    pub steps: Vec<Step>,
    #[schema(example = json!(["companyName", "contactName", "productName"]))]
    pub variables: Vec<String>,
    /// Said after the beep when a call reaches an answering machine.
    #[schema(example = "Hi {contactName}, this is {companyName}. Please call us back at 555-0100.")]
    pub voicemail_message: Option<String>,
    /// How many calls were made (or are planned) with this template.
    #[schema(example = 245)]
    pub usage_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A template in a list: its steps are summarised by their count.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSummary {
    pub id: Id,
    #[schema(example = "Sales Outreach")]
    pub name: String,
    #[schema(example = "Template for initial sales calls")]
    pub description: Option<String>,
    #[schema(example = "sales")]
    pub industry: Option<String>,
    #[schema(example = 5)]
    pub step_count: i64,
    #[schema(example = json!(["companyName", "contactName", "productName"]))]
    pub variables: Vec<String>,
    #[schema(example = 245)]
    pub usage_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the call path and call creation need from a template.
#[derive(Clone, Debug)]
pub struct TemplateScript {
    pub id: Id,
    pub name: String,
    pub steps: Vec<Step>,
    /// The variables every call with this template must supply.
    pub variables: Vec<String>,
    pub voicemail_message: Option<String>,
}

impl TemplateScript {
    /// Adds what `contact` supplies for the template's variables and placeholders to
    /// `variables`, keeping the values already there.
    pub fn fill_from_contact(&self, contact: &super::contacts::Contact, variables: &mut BTreeMap<String, String>) {
        let texts = self.steps.iter().map(|s| s.content.as_str()).chain(self.voicemail_message.as_deref());
        let wanted = self.variables.iter().cloned().chain(texts.flat_map(placeholders));
        for name in wanted {
            if !variables.contains_key(&name)
                && let Some(v) = contact.template_value(&name)
            {
                variables.insert(name, v);
            }
        }
    }
}

/// What a template is made of, already validated.
#[derive(Clone, Debug)]
pub struct TemplateFields {
    pub name: String,
    pub description: Option<String>,
    pub industry: Option<String>,
    pub steps: Vec<Step>,
    pub variables: Vec<String>,
    pub voicemail_message: Option<String>,
}

const COLUMNS: &str = "id, name, description, industry, steps, variables, voicemail_message, created_at, updated_at";

/// Counts through the `calls_template` index; template ids are unique, the account
/// filter only keeps isolation explicit.
const USAGE_COUNT: &str =
    "(SELECT CAST(COUNT(*) AS BIGINT) FROM calls k WHERE k.template_id = t.id AND k.account_id = t.account_id)";

fn from_row(row: &AnyRow, usage_count: i64) -> StoreResult<Template> {
    Ok(Template {
        id: Id::from_trusted(row.text("id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        industry: row.opt_text("industry")?,
        steps: json_col(row, "steps")?,
        variables: json_col(row, "variables")?,
        voicemail_message: row.opt_text("voicemail_message")?,
        usage_count,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

fn summary_from_row(row: &AnyRow) -> StoreResult<TemplateSummary> {
    Ok(TemplateSummary {
        id: Id::from_trusted(row.text("id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        industry: row.opt_text("industry")?,
        step_count: json_col::<Vec<IgnoredAny>>(row, "steps")?.len() as i64,
        variables: json_col(row, "variables")?,
        usage_count: row.int("usage_count")?,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

pub async fn create(db: &Db, account_id: &Id, fields: TemplateFields) -> StoreResult<Template> {
    let id = Id::generate();
    let now = Timestamp::now();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO templates (account_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .bind(fields.name.clone())
    .bind(fields.description.clone())
    .bind(fields.industry.clone())
    .bind(to_json(&fields.steps))
    .bind(to_json(&fields.variables))
    .bind(fields.voicemail_message.clone())
    .bind(now.to_db())
    .bind(now.to_db())
    .execute(&db.write)
    .await?;
    Ok(Template {
        id,
        name: fields.name,
        description: fields.description,
        industry: fields.industry,
        steps: fields.steps,
        variables: fields.variables,
        voicemail_message: fields.voicemail_message,
        usage_count: 0,
        created_at: now,
        updated_at: now,
    })
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<Template>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS}, {USAGE_COUNT} AS usage_count FROM templates t WHERE t.account_id = $1 AND t.id = $2"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| from_row(&r, r.int("usage_count")?)).transpose()
}

/// The steps and variables of a template of the account, without its usage count.
pub async fn load_script(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<TemplateScript>> {
    let row = sqlx::query(
        "SELECT id, name, steps, variables, voicemail_message FROM templates WHERE account_id = $1 AND id = $2",
    )
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| {
        Ok(TemplateScript {
            id: Id::from_trusted(r.text("id")?),
            name: r.text("name")?,
            steps: json_col(&r, "steps")?,
            variables: json_col(&r, "variables")?,
            voicemail_message: r.opt_text("voicemail_message")?,
        })
    })
    .transpose()
}

pub struct ListFilter {
    /// Case-insensitive exact match.
    pub industry: Option<String>,
    /// Case-insensitive substring of the name or the description.
    pub search: Option<String>,
}

pub async fn list(
    db: &Db,
    account_id: &Id,
    filter: &ListFilter,
    page: PageRequest,
) -> StoreResult<Page<TemplateSummary>> {
    let mut sql = Sql::new("FROM templates t WHERE t.account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(industry) = &filter.industry {
        sql.push_with(" AND LOWER(t.industry) = LOWER(?)", [industry.trim().into()]);
    }
    if let Some(search) = &filter.search {
        let p = like_pattern(search);
        sql.push_with(
            " AND (LOWER(t.name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(t.description, '')) LIKE ? ESCAPE '\\')",
            [p.clone().into(), p.into()],
        );
    }
    let columns = format!(
        "t.id, t.name, t.description, t.industry, t.steps, t.variables, t.created_at, t.updated_at, \
         {USAGE_COUNT} AS usage_count"
    );
    let (rows, total) = fetch_page(&db.read, &columns, &sql, "t.created_at DESC, t.id DESC", page).await?;
    Ok(Page { items: rows.iter().map(summary_from_row).collect::<StoreResult<_>>()?, total })
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears an optional one.
#[derive(Default)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub steps: Option<Vec<Step>>,
    pub variables: Option<Vec<String>>,
    pub voicemail_message: Option<Option<String>>,
}

pub async fn update(db: &Db, account_id: &Id, id: &Id, patch: TemplatePatch) -> StoreResult<Option<Template>> {
    let mut tx = db.write.begin().await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS}, {USAGE_COUNT} AS usage_count FROM templates t WHERE t.account_id = $1 AND t.id = $2"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut t = from_row(&row, row.int("usage_count")?)?;
    if let Some(v) = patch.name {
        t.name = v;
    }
    if let Some(v) = patch.description {
        t.description = v;
    }
    if let Some(v) = patch.industry {
        t.industry = v;
    }
    if let Some(v) = patch.steps {
        t.steps = v;
    }
    if let Some(v) = patch.variables {
        t.variables = v;
    }
    if let Some(v) = patch.voicemail_message {
        t.voicemail_message = v;
    }
    t.updated_at = Timestamp::now();
    sqlx::query(
        "UPDATE templates SET name = $1, description = $2, industry = $3, steps = $4, variables = $5, \
         voicemail_message = $6, updated_at = $7 WHERE account_id = $8 AND id = $9",
    )
    .bind(t.name.clone())
    .bind(t.description.clone())
    .bind(t.industry.clone())
    .bind(to_json(&t.steps))
    .bind(to_json(&t.variables))
    .bind(t.voicemail_message.clone())
    .bind(t.updated_at.to_db())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(t))
}

pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Campaigns that may still place calls with the template, and inbound numbers
    /// whose calls run it.
    InUse {
        campaign_ids: Vec<Id>,
        phone_number_ids: Vec<Id>,
    },
}

/// Deletes a template unless a scheduled, active or paused campaign or an inbound
/// phone number uses it. Calls made with it keep their `templateId`.
pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<DeleteOutcome> {
    let mut tx = db.write.begin().await?;
    // On PostgreSQL the row lock makes a concurrent phone number create (which share-locks
    // the template) either finish first and be seen below, or wait and find no template.
    let lock = if db.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let exists =
        sqlx::query(AssertSqlSafe(format!("SELECT id FROM templates WHERE account_id = $1 AND id = $2{lock}")))
            .bind(account_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
    if !exists {
        return Ok(DeleteOutcome::NotFound);
    }
    // Only constant status names are interpolated.
    let live = CampaignStatus::ALL
        .iter()
        .filter(|s| s.is_live())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let campaigns = sqlx::query(AssertSqlSafe(format!(
        "SELECT id FROM campaigns WHERE account_id = $1 AND template_id = $2 AND status IN ({live}) \
         ORDER BY created_at, id"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let phone_number_ids = phone_numbers::ids_using_template(&mut tx, account_id, id).await?;
    if !campaigns.is_empty() || !phone_number_ids.is_empty() {
        let campaign_ids = campaigns.iter().map(|r| r.text("id").map(Id::from_trusted)).collect::<StoreResult<_>>()?;
        return Ok(DeleteOutcome::InUse { campaign_ids, phone_number_ids });
    }
    sqlx::query("DELETE FROM templates WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(DeleteOutcome::Deleted)
}
