//! Contacts, their tags (a side table so tag filters use an index on both databases)
//! and their call history.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Arg, Backend, Db, Page, PageRequest, RowExt, Sql, StoreResult, fetch_page, json_col, like_pattern};
use crate::domain::{Id, Phone, Timestamp};

/// A JSON scalar as a template value: strings as they are, numbers and booleans written out.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Contact {
    /// The value this contact gives a template variable: its well-known fields under their
    /// usual names, else a custom field of that name.
    pub fn template_value(&self, name: &str) -> Option<String> {
        let known = match name {
            "contactName" | "name" | "fullName" => Some(self.name.clone()),
            "firstName" | "contactFirstName" => self.name.split_whitespace().next().map(str::to_owned),
            "contactPhone" | "phone" => Some(self.phone.clone()),
            "contactEmail" | "email" => self.email.clone(),
            "company" | "contactCompany" => self.company.clone(),
            _ => None,
        };
        known.or_else(|| self.custom_fields.get(name).and_then(scalar_text))
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: Id,
    #[schema(example = "John Smith")]
    pub name: String,
    #[schema(example = "+15551234567")]
    pub phone: String,
    /// Whether the number is valid in its country's numbering plan (fictional
    /// numbers such as +1555... are accepted but not valid).
    pub phone_valid: bool,
    #[schema(example = "john.smith@example.com")]
    pub email: Option<String>,
    #[schema(example = "Acme Inc")]
    pub company: Option<String>,
    #[schema(example = json!(["customer", "vip"]))]
    pub tags: Vec<String>,
    #[schema(value_type = Object, example = json!({"industry": "Technology"}))]
    pub custom_fields: Map<String, Value>,
    /// Never call this contact (set by the API, a CSV column, or a callee's opt-out).
    pub do_not_call: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a contact is made of, already validated.
#[derive(Clone, Debug)]
pub struct ContactFields {
    pub name: String,
    pub phone: Phone,
    pub email: Option<String>,
    pub company: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Map<String, Value>,
    pub do_not_call: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallHistoryEntry {
    pub id: Id,
    /// When the call started (or is scheduled, or was created).
    pub date: Timestamp,
    pub duration: Option<i64>,
    #[schema(example = "successful")]
    pub outcome: Option<String>,
    #[schema(example = "completed")]
    pub status: String,
}

const COLUMNS: &str =
    "id, name, phone, phone_valid, email, company, tags, custom_fields, do_not_call, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<Contact> {
    Ok(Contact {
        id: Id::from_trusted(row.text("id")?),
        name: row.text("name")?,
        phone: row.text("phone")?,
        phone_valid: row.int("phone_valid")? != 0,
        email: row.opt_text("email")?,
        company: row.opt_text("company")?,
        tags: json_col(row, "tags")?,
        custom_fields: json_col(row, "custom_fields")?,
        do_not_call: row.int("do_not_call")? != 0,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

pub async fn create(db: &Db, account_id: &Id, fields: ContactFields) -> StoreResult<Contact> {
    let id = Id::generate();
    let now = Timestamp::now();
    let mut tx = db.write.begin().await?;
    insert_contact(&mut tx, account_id, &id, &fields, now).await?;
    tx.commit().await?;
    Ok(Contact {
        id,
        name: fields.name,
        phone: fields.phone.as_str().to_owned(),
        phone_valid: fields.phone.is_valid(),
        email: fields.email,
        company: fields.company,
        tags: fields.tags,
        custom_fields: fields.custom_fields,
        do_not_call: fields.do_not_call,
        created_at: now,
        updated_at: now,
    })
}

async fn insert_contact(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &Id,
    id: &Id,
    f: &ContactFields,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO contacts (account_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .bind(f.name.clone())
    .bind(f.phone.as_str())
    .bind(i64::from(f.phone.is_valid()))
    .bind(f.email.clone())
    .bind(f.company.clone())
    .bind(serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&f.custom_fields).unwrap_or_else(|_| "{}".into()))
    .bind(i64::from(f.do_not_call))
    .bind(now.to_db())
    .bind(now.to_db())
    .execute(&mut **tx)
    .await?;
    write_tags(tx, account_id, id, &f.tags).await
}

async fn write_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &Id,
    id: &Id,
    tags: &[String],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1").bind(id.as_str()).execute(&mut **tx).await?;
    for tag in tags {
        sqlx::query(
            "INSERT INTO contact_tags (contact_id, account_id, tag) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(account_id.as_str())
        .bind(tag.clone())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<Contact>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Which of `ids` exist in the account (for validating references).
pub async fn existing_ids(db: &Db, account_id: &Id, ids: &[Id]) -> StoreResult<Vec<Id>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new("SELECT id FROM contacts WHERE account_id = ");
        let a = sql.arg(account_id.as_str());
        sql.push(&a).push(" AND id IN (");
        sql.push_list(chunk.iter().map(|id| Arg::from(id.as_str())));
        sql.push(")");
        for row in sql.query().fetch_all(&db.read).await? {
            found.push(Id::from_trusted(row.text("id")?));
        }
    }
    Ok(found)
}

pub struct ListFilter {
    pub tag: Option<String>,
    pub search: Option<String>,
    /// Only members of this contact list.
    pub list_id: Option<Id>,
}

pub async fn list(db: &Db, account_id: &Id, filter: &ListFilter, page: PageRequest) -> StoreResult<Page<Contact>> {
    let mut sql = Sql::new("FROM contacts c WHERE c.account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(tag) = &filter.tag {
        sql.push_with(
            " AND EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.account_id = ? AND t.tag = ?)",
            [account_id.as_str().into(), tag.as_str().into()],
        );
    }
    if let Some(search) = &filter.search {
        let p = like_pattern(search);
        sql.push_with(
            " AND (LOWER(c.name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(c.email, '')) LIKE ? ESCAPE '\\' OR c.phone LIKE ? ESCAPE '\\')",
            [p.clone().into(), p.clone().into(), p.into()],
        );
    }
    if let Some(list_id) = &filter.list_id {
        sql.push_with(
            " AND EXISTS (SELECT 1 FROM contact_list_members m WHERE m.contact_id = c.id AND m.list_id = ?)",
            [list_id.as_str().into()],
        );
    }
    let columns = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
    let (rows, total) = fetch_page(&db.read, &columns, &sql, "c.created_at DESC, c.id DESC", page).await?;
    Ok(Page { items: rows.iter().map(from_row).collect::<StoreResult<_>>()?, total })
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears an optional one.
#[derive(Default)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub email: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub custom_fields: Option<Map<String, Value>>,
    pub do_not_call: Option<bool>,
}

pub async fn update(db: &Db, account_id: &Id, id: &Id, patch: ContactPatch) -> StoreResult<Option<Contact>> {
    let mut tx = db.write.begin().await?;
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM contacts WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut c = from_row(&row)?;
    if let Some(v) = patch.name {
        c.name = v;
    }
    if let Some(v) = patch.phone {
        c.phone = v.as_str().to_owned();
        c.phone_valid = v.is_valid();
    }
    if let Some(v) = patch.email {
        c.email = v;
    }
    if let Some(v) = patch.company {
        c.company = v;
    }
    let tags_changed = patch.tags.is_some();
    if let Some(v) = patch.tags {
        c.tags = v;
    }
    if let Some(v) = patch.custom_fields {
        c.custom_fields = v;
    }
    if let Some(v) = patch.do_not_call {
        c.do_not_call = v;
    }
    c.updated_at = Timestamp::now();
    sqlx::query(
        "UPDATE contacts SET name = $1, phone = $2, phone_valid = $3, email = $4, company = $5, tags = $6, \
         custom_fields = $7, do_not_call = $8, updated_at = $9 WHERE id = $10",
    )
    .bind(c.name.clone())
    .bind(c.phone.clone())
    .bind(i64::from(c.phone_valid))
    .bind(c.email.clone())
    .bind(c.company.clone())
    .bind(serde_json::to_string(&c.tags).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&c.custom_fields).unwrap_or_else(|_| "{}".into()))
    .bind(i64::from(c.do_not_call))
    .bind(c.updated_at.to_db())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    if tags_changed {
        write_tags(&mut tx, account_id, id, &c.tags).await?;
    }
    tx.commit().await?;
    Ok(Some(c))
}

pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<bool> {
    let mut tx = db.write.begin().await?;
    let exists = sqlx::query("SELECT id FROM contacts WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        for table in ["contact_tags", "contact_list_members"] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE contact_id = $1")))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM contacts WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(exists)
}

/// The contact's calls, newest first (capped: the full list is `GET /calls?contactId=`).
pub async fn call_history(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Vec<CallHistoryEntry>> {
    let rows = sqlx::query(
        "SELECT id, effective_at, duration, outcome, status FROM calls WHERE account_id = $1 AND contact_id = $2 \
         ORDER BY effective_at DESC, id DESC LIMIT 100",
    )
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CallHistoryEntry {
                id: Id::from_trusted(r.text("id")?),
                date: Timestamp::from_db(&r.text("effective_at")?),
                duration: r.opt_int("duration")?,
                outcome: r.opt_text("outcome")?,
                status: r.text("status")?,
            })
        })
        .collect()
}

/// Result of writing one batch of imported rows.
#[derive(Debug, Default)]
pub struct UpsertCounts {
    pub created: usize,
    pub updated: usize,
}

/// Bound values per multi-row statement in `upsert_batch`. SQLite looks up each `$N`
/// parameter's name with a linear scan, so binding is quadratic in the parameter count
/// (at 4 500 parameters per statement it took most of the import time): keep its
/// statements small. PostgreSQL has no such cost; there, fewer round trips win.
fn params_per_statement(db: &Db) -> usize {
    match db.backend {
        Backend::Sqlite => 100,
        Backend::Postgres => 2000,
    }
}

/// Inserts a batch of contacts, or updates the existing contact with the same phone
/// number in the account (the earliest created one if several share it), and adds all
/// of them to `list_id` if given. One transaction.
///
/// An update replaces name, email, company, tags and custom fields, but never clears
/// `doNotCall`: an opt-out is only lifted by an explicit `PATCH`, not by re-importing an
/// old file. Several rows with the same phone behave as if written in order.
///
/// A few multi-row statements per batch instead of several per row make a 100 000-row
/// CSV import take seconds. The statements are shaped so that both planners use the
/// right index even on a freshly filled table without statistics (PostgreSQL otherwise
/// answers `phone IN (...)` by scanning the whole account, and caches that plan).
pub async fn upsert_batch(
    db: &Db,
    account_id: &Id,
    batch: &[ContactFields],
    list_id: Option<&Id>,
) -> StoreResult<UpsertCounts> {
    use std::collections::{HashMap, HashSet};

    let mut counts = UpsertCounts::default();
    if batch.is_empty() {
        return Ok(counts);
    }
    let now = Timestamp::now().to_db();
    let max_params = params_per_statement(db);
    let mut tx = db.write.begin().await?;

    // The existing contact of each phone: one correlated lookup per phone, which
    // always seeks the (account_id, phone) index.
    let phones: Vec<&str> = batch.iter().map(|f| f.phone.as_str()).collect::<HashSet<_>>().into_iter().collect();
    let mut existing: HashMap<String, Id> = HashMap::new();
    for chunk in phones.chunks(max_params) {
        let mut sql = Sql::new("WITH v(phone) AS (VALUES ");
        for (i, phone) in chunk.iter().enumerate() {
            let p = sql.arg(*phone);
            sql.push(&format!("{}({p})", if i == 0 { "" } else { ", " }));
        }
        let a = sql.arg(account_id.as_str());
        sql.push(&format!(
            ") SELECT v.phone, (SELECT MIN(c.id) FROM contacts c WHERE c.account_id = {a} AND c.phone = v.phone) \
             AS id FROM v"
        ));
        for row in sql.query().fetch_all(&mut *tx).await? {
            if let Some(id) = row.opt_text("id")? {
                existing.insert(row.text("phone")?, Id::from_trusted(id));
            }
        }
    }
    // Their current tags, to rewrite only the tags that change.
    let mut old_tags: HashMap<String, Vec<String>> = HashMap::new();
    let existing_ids: Vec<&Id> = existing.values().collect();
    for chunk in existing_ids.chunks(max_params) {
        let mut sql = Sql::new("SELECT id, tags FROM contacts WHERE id IN (");
        for (i, id) in chunk.iter().enumerate() {
            let p = sql.arg(id.as_str());
            sql.push(&format!("{}{p}", if i == 0 { "" } else { ", " }));
        }
        sql.push(")");
        // Planned per execution: a plan cached while the table was small could scan it.
        for row in sql.query().persistent(false).fetch_all(&mut *tx).await? {
            old_tags.insert(row.text("id")?, json_col(&row, "tags")?);
        }
    }

    // One write per phone: the last row with that phone, with any row's doNotCall.
    struct Write<'a> {
        id: Id,
        fields: &'a ContactFields,
        do_not_call: bool,
    }
    let mut writes: Vec<Write> = Vec::with_capacity(batch.len());
    let mut by_phone = HashMap::with_capacity(batch.len());
    for f in batch {
        if let Some(&i) = by_phone.get(f.phone.as_str()) {
            let w: &mut Write = &mut writes[i];
            w.fields = f;
            w.do_not_call |= f.do_not_call;
            counts.updated += 1;
            continue;
        }
        let id = match existing.get(f.phone.as_str()) {
            Some(id) => {
                counts.updated += 1;
                id.clone()
            }
            None => {
                counts.created += 1;
                Id::generate()
            }
        };
        by_phone.insert(f.phone.as_str(), writes.len());
        writes.push(Write { id, fields: f, do_not_call: f.do_not_call });
    }

    for chunk in writes.chunks(max_params / 9) {
        let mut sql = Sql::new(&format!("INSERT INTO contacts (account_id, {COLUMNS}) VALUES "));
        let a = sql.arg(account_id.as_str());
        let t = sql.arg(now.clone());
        for (i, w) in chunk.iter().enumerate() {
            let f = w.fields;
            sql.push(if i == 0 { "(" } else { ", (" }).push(&a).push(", ");
            sql.push_with(
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ",
                [
                    w.id.as_str().into(),
                    f.name.clone().into(),
                    f.phone.as_str().into(),
                    i64::from(f.phone.is_valid()).into(),
                    f.email.clone().into(),
                    f.company.clone().into(),
                    serde_json::to_string(&f.tags).unwrap_or_else(|_| "[]".into()).into(),
                    serde_json::to_string(&f.custom_fields).unwrap_or_else(|_| "{}".into()).into(),
                    i64::from(w.do_not_call).into(),
                ],
            );
            sql.push(&t).push(", ").push(&t).push(")");
        }
        // Existing contacts (found above within the account) keep id, phone and createdAt.
        sql.push(
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, phone_valid = excluded.phone_valid, \
             email = excluded.email, company = excluded.company, tags = excluded.tags, \
             custom_fields = excluded.custom_fields, \
             do_not_call = CASE WHEN contacts.do_not_call = 1 THEN 1 ELSE excluded.do_not_call END, \
             updated_at = excluded.updated_at",
        );
        sql.query().execute(&mut *tx).await?;
    }

    // Tag rows: add the new ones, drop the ones no longer listed.
    let mut added: Vec<(&str, &str)> = Vec::new();
    let mut removed: Vec<(&str, &str)> = Vec::new();
    for w in &writes {
        let old = old_tags.get(w.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        added.extend(w.fields.tags.iter().filter(|t| !old.contains(t)).map(|t| (w.id.as_str(), t.as_str())));
        removed.extend(old.iter().filter(|t| !w.fields.tags.contains(t)).map(|t| (w.id.as_str(), t.as_str())));
    }
    for chunk in removed.chunks(max_params / 2) {
        // Each term matches the primary key exactly, which both planners turn into seeks.
        let mut sql = Sql::new("DELETE FROM contact_tags WHERE ");
        for (i, (id, tag)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "" } else { " OR " });
            sql.push_with("(contact_id = ? AND tag = ?)", [(*id).into(), (*tag).into()]);
        }
        sql.query().persistent(false).execute(&mut *tx).await?;
    }
    for chunk in added.chunks(max_params / 2) {
        let mut sql = Sql::new("INSERT INTO contact_tags (contact_id, account_id, tag) VALUES ");
        let a = sql.arg(account_id.as_str());
        for (i, (id, tag)) in chunk.iter().enumerate() {
            let p = sql.arg(*id);
            let q = sql.arg(*tag);
            sql.push(&format!("{}({p}, {a}, {q})", if i == 0 { "" } else { ", " }));
        }
        sql.push(" ON CONFLICT DO NOTHING");
        sql.query().execute(&mut *tx).await?;
    }

    if let Some(list_id) = list_id {
        for chunk in writes.chunks(max_params) {
            let mut sql = Sql::new("INSERT INTO contact_list_members (list_id, contact_id, added_at) VALUES ");
            let l = sql.arg(list_id.as_str());
            let t = sql.arg(now.clone());
            for (i, w) in chunk.iter().enumerate() {
                let p = sql.arg(w.id.as_str());
                sql.push(&format!("{}({l}, {p}, {t})", if i == 0 { "" } else { ", " }));
            }
            sql.push(" ON CONFLICT DO NOTHING");
            sql.query().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(counts)
}
