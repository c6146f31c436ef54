//! Carrier accounts that belong to an account (`/v1/carriers`). The auth token is stored
//! sealed (`crate::secrets`) and leaves this module only as the sealed text; the API never
//! shows it.

use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Db, RowExt, StoreError, StoreResult};
use crate::domain::{Id, Timestamp};

/// A carrier account as the API shows it: everything but the secret.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Carrier {
    pub id: Id,
    /// `twilio`.
    #[serde(rename = "type")]
    #[schema(example = "twilio")]
    pub kind: String,
    #[schema(example = "Production Twilio")]
    pub name: Option<String>,
    /// The Twilio account SID the calls and numbers of this carrier belong to.
    #[schema(example = "AC00000000000000000000000000000001")]
    pub account_sid: String,
    /// `From` for this carrier's calls that give no `callerId`: a number the Twilio account
    /// owns or has verified.
    #[schema(example = "+15005550006")]
    pub caller_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A carrier with its sealed auth token, for the code that talks to the carrier.
#[derive(Clone, Debug)]
pub struct SealedCarrier {
    pub account_id: Id,
    pub carrier: Carrier,
    pub auth_token_sealed: String,
}

impl SealedCarrier {
    /// The associated data the token is sealed under: the row it belongs to.
    pub fn seal_context(id: &Id) -> String {
        format!("carrier:{id}")
    }
}

pub const TWILIO: &str = "twilio";

const COLUMNS: &str =
    "id, account_id, kind, name, twilio_account_sid, auth_token_sealed, caller_id, created_at, updated_at";

fn from_row(row: &AnyRow) -> StoreResult<SealedCarrier> {
    Ok(SealedCarrier {
        account_id: Id::from_trusted(row.text("account_id")?),
        auth_token_sealed: row.text("auth_token_sealed")?,
        carrier: Carrier {
            id: Id::from_trusted(row.text("id")?),
            kind: row.text("kind")?,
            name: row.opt_text("name")?,
            account_sid: row.text("twilio_account_sid")?,
            caller_id: row.opt_text("caller_id")?,
            created_at: Timestamp::from_db(&row.text("created_at")?),
            updated_at: Timestamp::from_db(&row.text("updated_at")?),
        },
    })
}

/// A carrier to add, checked; its token already sealed for `id`.
pub struct NewCarrier {
    pub id: Id,
    pub name: Option<String>,
    pub account_sid: String,
    pub auth_token_sealed: String,
    pub caller_id: Option<String>,
}

pub enum CreateOutcome {
    Created(Carrier),
    /// The account has a Twilio carrier already (one per kind).
    AccountHasOne,
    /// Another account (or this one) registered this Twilio account.
    SidTaken,
}

pub async fn create(db: &Db, account_id: &Id, new: NewCarrier) -> StoreResult<CreateOutcome> {
    let now = Timestamp::now();
    // Both unique indexes may refuse; ON CONFLICT without a target covers either.
    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO carriers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING"
    )))
    .bind(new.id.as_str())
    .bind(account_id.as_str())
    .bind(TWILIO)
    .bind(new.name.clone())
    .bind(new.account_sid.clone())
    .bind(new.auth_token_sealed)
    .bind(new.caller_id.clone())
    .bind(now.to_db())
    .execute(&db.write)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(if for_account(db, account_id).await?.is_some() {
            CreateOutcome::AccountHasOne
        } else {
            CreateOutcome::SidTaken
        });
    }
    Ok(CreateOutcome::Created(Carrier {
        id: new.id,
        kind: TWILIO.into(),
        name: new.name,
        account_sid: new.account_sid,
        caller_id: new.caller_id,
        created_at: now,
        updated_at: now,
    }))
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<SealedCarrier>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM carriers WHERE account_id = $1 AND id = $2")))
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The account's Twilio carrier, if it has one.
pub async fn for_account(db: &Db, account_id: &Id) -> StoreResult<Option<SealedCarrier>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM carriers WHERE account_id = $1 AND kind = $2")))
        .bind(account_id.as_str())
        .bind(TWILIO)
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Any account's carrier by id (a call leg's, whose account is known from the leg).
pub async fn by_id(db: &Db, id: &Id) -> StoreResult<Option<SealedCarrier>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM carriers WHERE id = $1")))
        .bind(id.as_str())
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The carrier of the Twilio account that signed a webhook. Not filtered by account: the
/// webhook does not know ours yet.
pub async fn by_twilio_sid(db: &Db, account_sid: &str) -> StoreResult<Option<SealedCarrier>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM carriers WHERE twilio_account_sid = $1")))
        .bind(account_sid)
        .fetch_optional(&db.read)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db, account_id: &Id) -> StoreResult<Vec<Carrier>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM carriers WHERE account_id = $1 ORDER BY created_at, id"
    )))
    .bind(account_id.as_str())
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|r| from_row(r).map(|c| c.carrier)).collect()
}

/// A checked change: `None` keeps a field; `caller_id: Some(None)` clears it.
#[derive(Default)]
pub struct CarrierPatch {
    pub name: Option<Option<String>>,
    pub auth_token_sealed: Option<String>,
    pub caller_id: Option<Option<String>>,
}

pub async fn update(db: &Db, account_id: &Id, id: &Id, patch: CarrierPatch) -> StoreResult<Option<Carrier>> {
    let Some(current) = get(db, account_id, id).await? else { return Ok(None) };
    let now = Timestamp::now();
    let name = patch.name.unwrap_or(current.carrier.name);
    let caller_id = patch.caller_id.unwrap_or(current.carrier.caller_id);
    let sealed = patch.auth_token_sealed.unwrap_or(current.auth_token_sealed);
    let updated = sqlx::query(
        "UPDATE carriers SET name = $1, caller_id = $2, auth_token_sealed = $3, updated_at = $4 \
         WHERE account_id = $5 AND id = $6",
    )
    .bind(name.clone())
    .bind(caller_id.clone())
    .bind(sealed)
    .bind(now.to_db())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .execute(&db.write)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    Ok(Some(Carrier { name, caller_id, updated_at: now, ..current.carrier }))
}

pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Inbound numbers still arrive through it.
    InUse {
        numbers: i64,
    },
}

pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<DeleteOutcome> {
    let mut tx = db.write.begin().await?;
    let numbers = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM phone_numbers WHERE carrier_id = $1")
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .int("n")?;
    let exists = sqlx::query("SELECT id FROM carriers WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        return Ok(DeleteOutcome::NotFound);
    }
    if numbers > 0 {
        return Ok(DeleteOutcome::InUse { numbers });
    }
    sqlx::query("DELETE FROM carriers WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(DeleteOutcome::Deleted)
}
