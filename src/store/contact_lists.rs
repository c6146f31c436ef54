//! Contact lists: named groups of an account's contacts (`contact_list_members`), which
//! campaigns take as `contactListIds`. Membership never outlives the list or the contact.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

use super::{Db, Page, PageRequest, RowExt, Sql, StoreResult, fetch_page, like_pattern};
use crate::domain::{Id, Timestamp};

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    #[schema(example = "60a2e7f3b9c1a83e94d8f2d1")]
    pub id: Id,
    #[schema(example = "Spring leads")]
    pub name: String,
    #[schema(example = "Leads from the April trade show")]
    pub description: Option<String>,
    /// How many contacts are in the list.
    #[schema(example = 250)]
    pub contact_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The outcome of adding contacts to a list.
#[derive(Debug)]
pub enum AddMembers {
    ListNotFound,
    /// Some ids are not contacts of the account; nothing was added.
    Missing(Vec<Id>),
    Added {
        added: i64,
        contact_count: i64,
    },
}

/// The outcome of removing one contact from a list.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoveMember {
    ListNotFound,
    NotAMember,
    Removed,
}

/// Ids per statement: few enough for SQLite's binding to stay cheap (it is quadratic in
/// the parameter count). Statements with id lists are not kept prepared
/// (`persistent(false)`): PostgreSQL would otherwise reuse a plan made while the table
/// was small, which may scan the whole account instead of seeking the ids.
const CHUNK: usize = 100;

const COLUMNS: &str = "id, name, description, created_at, updated_at";

fn from_row(row: &AnyRow, contact_count: i64) -> StoreResult<ContactList> {
    Ok(ContactList {
        id: Id::from_trusted(row.text("id")?),
        name: row.text("name")?,
        description: row.opt_text("description")?,
        contact_count,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

/// Creates a list with `contact_ids` as its first members, or reports the ids that are
/// not contacts of the account (and creates nothing).
pub async fn create(
    db: &Db,
    account_id: &Id,
    name: String,
    description: Option<String>,
    contact_ids: &[Id],
) -> StoreResult<Result<ContactList, Vec<Id>>> {
    let id = Id::generate();
    let now = Timestamp::now();
    let mut tx = db.write.begin().await?;
    let missing = missing_contacts(&mut tx, account_id, contact_ids).await?;
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    sqlx::query(
        "INSERT INTO contact_lists (id, account_id, name, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.as_str())
    .bind(account_id.as_str())
    .bind(name.clone())
    .bind(description.clone())
    .bind(now.to_db())
    .bind(now.to_db())
    .execute(&mut *tx)
    .await?;
    let added = insert_members(&mut tx, account_id, &id, contact_ids, now).await?;
    tx.commit().await?;
    Ok(Ok(ContactList { id, name, description, contact_count: added, created_at: now, updated_at: now }))
}

/// The ids among `ids` that are not contacts of the account.
async fn missing_contacts(tx: &mut Transaction<'_, Any>, account_id: &Id, ids: &[Id]) -> StoreResult<Vec<Id>> {
    let mut found = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut sql = Sql::new("SELECT id FROM contacts WHERE account_id = ");
        let a = sql.arg(account_id.as_str());
        sql.push(&a).push(" AND id IN (");
        push_list(&mut sql, chunk.iter().map(|id| id.as_str()));
        sql.push(")");
        for row in sql.query().persistent(false).fetch_all(&mut **tx).await? {
            found.insert(row.text("id")?);
        }
    }
    let mut reported = HashSet::new();
    Ok(ids.iter().filter(|id| !found.contains(id.as_str()) && reported.insert(id.as_str())).cloned().collect())
}

/// Adds the account's contacts among `ids` to the list; existing members are kept as
/// they are. Returns how many were added.
async fn insert_members(
    tx: &mut Transaction<'_, Any>,
    account_id: &Id,
    list_id: &Id,
    ids: &[Id],
    now: Timestamp,
) -> StoreResult<i64> {
    let mut added = 0;
    for chunk in ids.chunks(CHUNK) {
        // Selecting from `contacts` keeps the account check in the same statement.
        let mut sql = Sql::new("INSERT INTO contact_list_members (list_id, contact_id, added_at) SELECT ");
        let l = sql.arg(list_id.as_str());
        let t = sql.arg(now.to_db());
        let a = sql.arg(account_id.as_str());
        sql.push(&format!("{l}, c.id, {t} FROM contacts c WHERE c.account_id = {a} AND c.id IN ("));
        push_list(&mut sql, chunk.iter().map(|id| id.as_str()));
        sql.push(") ON CONFLICT DO NOTHING");
        added += sql.query().persistent(false).execute(&mut **tx).await?.rows_affected() as i64;
    }
    Ok(added)
}

/// Pushes `$1, $2, ...` for the values.
fn push_list<'a>(sql: &mut Sql, values: impl Iterator<Item = &'a str>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let p = sql.arg(v);
        sql.push(&p);
    }
}

async fn count_members(executor: impl sqlx::Executor<'_, Database = Any>, list_id: &Id) -> StoreResult<i64> {
    sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM contact_list_members WHERE list_id = $1")
        .bind(list_id.as_str())
        .fetch_one(executor)
        .await?
        .int("n")
}

async fn list_exists(tx: &mut Transaction<'_, Any>, account_id: &Id, id: &Id) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT id FROM contact_lists WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

/// Whether the list exists in the account (cheap check before streaming an import).
pub async fn exists(db: &Db, account_id: &Id, id: &Id) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT id FROM contact_lists WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?
        .is_some())
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<ContactList>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contact_lists WHERE account_id = $1 AND id = $2"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&db.read)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let count = count_members(&db.read, id).await?;
    from_row(&row, count).map(Some)
}

/// Lists newest first, optionally only those whose name contains `search`.
pub async fn list(db: &Db, account_id: &Id, search: Option<&str>, page: PageRequest) -> StoreResult<Page<ContactList>> {
    let mut sql = Sql::new("FROM contact_lists WHERE account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(search) = search {
        sql.push_with(" AND LOWER(name) LIKE ? ESCAPE '\\'", [like_pattern(search).into()]);
    }
    let (rows, total) = fetch_page(&db.read, COLUMNS, &sql, "created_at DESC, id DESC", page).await?;
    // The page's member counts in one grouped query.
    let mut counts = HashMap::new();
    if !rows.is_empty() {
        let ids = rows.iter().map(|r| r.text("id")).collect::<StoreResult<Vec<_>>>()?;
        let mut sql =
            Sql::new("SELECT list_id, CAST(COUNT(*) AS BIGINT) AS n FROM contact_list_members WHERE list_id IN (");
        push_list(&mut sql, ids.iter().map(String::as_str));
        sql.push(") GROUP BY list_id");
        for row in sql.query().persistent(false).fetch_all(&db.read).await? {
            counts.insert(row.text("list_id")?, row.int("n")?);
        }
    }
    let items = rows
        .iter()
        .map(|r| {
            let count = counts.get(&r.text("id")?).copied().unwrap_or(0);
            from_row(r, count)
        })
        .collect::<StoreResult<_>>()?;
    Ok(Page { items, total })
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears the description.
#[derive(Default)]
pub struct ContactListPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

pub async fn update(db: &Db, account_id: &Id, id: &Id, patch: ContactListPatch) -> StoreResult<Option<ContactList>> {
    let mut tx = db.write.begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contact_lists WHERE account_id = $1 AND id = $2"
    )))
    .bind(account_id.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let count = count_members(&mut *tx, id).await?;
    let mut list = from_row(&row, count)?;
    if let Some(name) = patch.name {
        list.name = name;
    }
    if let Some(description) = patch.description {
        list.description = description;
    }
    list.updated_at = Timestamp::now();
    sqlx::query("UPDATE contact_lists SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
        .bind(list.name.clone())
        .bind(list.description.clone())
        .bind(list.updated_at.to_db())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(list))
}

/// Deletes the list and its memberships; the contacts stay.
pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<bool> {
    let mut tx = db.write.begin().await?;
    if !list_exists(&mut tx, account_id, id).await? {
        return Ok(false);
    }
    sqlx::query("DELETE FROM contact_list_members WHERE list_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM contact_lists WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Adds contacts of the account to the list, all or nothing: if any id is not a contact
/// of the account, nothing is added. Adding an existing member is not an error.
pub async fn add_members(db: &Db, account_id: &Id, list_id: &Id, contact_ids: &[Id]) -> StoreResult<AddMembers> {
    let mut tx = db.write.begin().await?;
    if !list_exists(&mut tx, account_id, list_id).await? {
        return Ok(AddMembers::ListNotFound);
    }
    let missing = missing_contacts(&mut tx, account_id, contact_ids).await?;
    if !missing.is_empty() {
        return Ok(AddMembers::Missing(missing));
    }
    let added = insert_members(&mut tx, account_id, list_id, contact_ids, Timestamp::now()).await?;
    if added > 0 {
        touch(&mut *tx, list_id).await?;
    }
    let contact_count = count_members(&mut *tx, list_id).await?;
    tx.commit().await?;
    Ok(AddMembers::Added { added, contact_count })
}

pub async fn remove_member(db: &Db, account_id: &Id, list_id: &Id, contact_id: &Id) -> StoreResult<RemoveMember> {
    let mut tx = db.write.begin().await?;
    if !list_exists(&mut tx, account_id, list_id).await? {
        return Ok(RemoveMember::ListNotFound);
    }
    let removed = sqlx::query("DELETE FROM contact_list_members WHERE list_id = $1 AND contact_id = $2")
        .bind(list_id.as_str())
        .bind(contact_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Ok(RemoveMember::NotAMember);
    }
    touch(&mut *tx, list_id).await?;
    tx.commit().await?;
    Ok(RemoveMember::Removed)
}

/// Membership changes (including imports) count as changes of the list (`updatedAt`).
pub async fn touch(executor: impl sqlx::Executor<'_, Database = Any>, list_id: &Id) -> StoreResult<()> {
    sqlx::query("UPDATE contact_lists SET updated_at = $1 WHERE id = $2")
        .bind(Timestamp::now().to_db())
        .bind(list_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}
