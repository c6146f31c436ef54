//! Inbound phone numbers: the account, template (with its variables) and carrier an
//! inbound call to a number runs with. A number is unique per route: the carrier account it
//! arrives through plus the number (`twilio_route`), so `find_by_route` sends an inbound call
//! to exactly one account, and only a call through the Twilio account that owns the number.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};
use utoipa::ToSchema;

use super::{Backend, Db, Page, PageRequest, RowExt, Sql, StoreError, StoreResult, fetch_page, json_col};
use crate::domain::status::CarrierKind;
use crate::domain::{Id, Phone, Timestamp};

/// An inbound number as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    pub id: Id,
    /// The number in E.164 form; it cannot be changed.
    #[schema(example = "+15557654321")]
    pub phone: String,
    /// The template inbound calls to this number run.
    pub template_id: Id,
    /// The values the template's `{placeholders}` are filled with on inbound calls.
    #[schema(example = json!({"companyName": "Acme Inc", "productName": "Premium Widget"}))]
    pub variables: BTreeMap<String, String>,
    /// `simulator` (the embedded virtual carrier), `twilio` or `sip` (the SIP trunk).
    pub carrier: CarrierKind,
    /// The account's carrier account (`/v1/carriers`) whose number this is and whose signed
    /// calls it answers; `null` for the simulator or the gateway's default Twilio account.
    pub carrier_id: Option<Id>,
    #[schema(example = "Support line")]
    pub name: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A number to register, already validated.
#[derive(Clone, Debug)]
pub struct NewPhoneNumber {
    pub phone: Phone,
    pub template_id: Id,
    pub variables: BTreeMap<String, String>,
    pub carrier: CarrierKind,
    /// The account's carrier account the number was checked against (`None`: default).
    pub carrier_id: Option<Id>,
    pub name: Option<String>,
}

const COLUMNS: &str = "id, phone, template_id, variables, carrier, carrier_id, name, created_at, updated_at";

/// The route of a Twilio number: the carrier account it belongs to plus the number.
pub fn twilio_route(carrier_id: Option<&Id>, phone: &Phone) -> String {
    format!("twilio:{}:{phone}", carrier_id.map(Id::as_str).unwrap_or("default"))
}

/// The route of a number on the gateway's SIP trunk: its calls arrive at `--sip-listen`.
pub fn sip_route(phone: &Phone) -> String {
    format!("sip:default:{phone}")
}

/// A number's route (see migration 0009): simulator numbers are the account's own.
fn route(account_id: &Id, carrier: CarrierKind, carrier_id: Option<&Id>, phone: &Phone) -> String {
    match carrier {
        CarrierKind::Twilio => twilio_route(carrier_id, phone),
        CarrierKind::Sip => sip_route(phone),
        CarrierKind::Simulator => format!("simulator:{account_id}:{phone}"),
    }
}

fn from_row(row: &AnyRow) -> StoreResult<PhoneNumber> {
    let carrier = row.text("carrier")?;
    Ok(PhoneNumber {
        id: Id::from_trusted(row.text("id")?),
        phone: row.text("phone")?,
        template_id: Id::from_trusted(row.text("template_id")?),
        variables: json_col(row, "variables")?,
        carrier: CarrierKind::parse(&carrier).ok_or_else(|| StoreError::Corrupt(format!("carrier: '{carrier}'")))?,
        carrier_id: row.opt_text("carrier_id")?.map(Id::from_trusted),
        name: row.opt_text("name")?,
        created_at: Timestamp::from_db(&row.text("created_at")?),
        updated_at: Timestamp::from_db(&row.text("updated_at")?),
    })
}

fn to_json(variables: &BTreeMap<String, String>) -> String {
    serde_json::to_string(variables).unwrap_or_else(|_| "{}".into())
}

/// Whether the account's template exists, holding a share lock on it until the
/// transaction ends (PostgreSQL): a concurrent template delete, which locks the row for
/// update before it looks for users, then waits and sees this number.
async fn template_exists_locked(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &Id,
    template_id: &Id,
) -> StoreResult<bool> {
    let lock = if backend == Backend::Postgres { " FOR SHARE" } else { "" };
    Ok(sqlx::query(AssertSqlSafe(format!("SELECT id FROM templates WHERE account_id = $1 AND id = $2{lock}")))
        .bind(account_id.as_str())
        .bind(template_id.as_str())
        .fetch_optional(conn)
        .await?
        .is_some())
}

pub enum CreateOutcome {
    Created(PhoneNumber),
    TemplateNotFound,
    /// The number is registered already on this route, by this or another account.
    PhoneTaken,
}

pub async fn create(db: &Db, account_id: &Id, new: NewPhoneNumber) -> StoreResult<CreateOutcome> {
    let mut tx = db.write.begin().await?;
    if !template_exists_locked(&mut tx, db.backend, account_id, &new.template_id).await? {
        return Ok(CreateOutcome::TemplateNotFound);
    }
    let id = Id::generate();
    let now = Timestamp::now();
    // The unique index on the route decides races between accounts; both backends know
    // ON CONFLICT ... DO NOTHING.
    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO phone_numbers (account_id, route, {COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (route) DO NOTHING"
    )))
    .bind(account_id.as_str())
    .bind(route(account_id, new.carrier, new.carrier_id.as_ref(), &new.phone))
    .bind(id.as_str())
    .bind(new.phone.as_str())
    .bind(new.template_id.as_str())
    .bind(to_json(&new.variables))
    .bind(new.carrier.as_str())
    .bind(new.carrier_id.as_ref().map(Id::as_str))
    .bind(new.name.clone())
    .bind(now.to_db())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(CreateOutcome::PhoneTaken);
    }
    tx.commit().await?;
    Ok(CreateOutcome::Created(PhoneNumber {
        id,
        phone: new.phone.as_str().to_owned(),
        template_id: new.template_id,
        variables: new.variables,
        carrier: new.carrier,
        carrier_id: new.carrier_id,
        name: new.name,
        created_at: now,
        updated_at: now,
    }))
}

pub async fn get(db: &Db, account_id: &Id, id: &Id) -> StoreResult<Option<PhoneNumber>> {
    let row =
        sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM phone_numbers WHERE account_id = $1 AND id = $2")))
            .bind(account_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&db.read)
            .await?;
    row.as_ref().map(from_row).transpose()
}

/// The inbound routing lookup: which account has the number on this route, and what its
/// calls run. Deliberately not filtered by account: the caller does not know the account yet.
pub async fn find_by_route(db: &Db, route: &str) -> StoreResult<Option<(Id, PhoneNumber)>> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT account_id, {COLUMNS} FROM phone_numbers WHERE route = $1")))
        .bind(route)
        .fetch_optional(&db.read)
        .await?;
    row.map(|r| Ok((Id::from_trusted(r.text("account_id")?), from_row(&r)?))).transpose()
}

#[derive(Default)]
pub struct ListFilter {
    pub carrier: Option<CarrierKind>,
    pub template_id: Option<Id>,
    /// Exact match on the E.164 form.
    pub phone: Option<Phone>,
}

pub async fn list(db: &Db, account_id: &Id, filter: &ListFilter, page: PageRequest) -> StoreResult<Page<PhoneNumber>> {
    let mut sql = Sql::new("FROM phone_numbers WHERE account_id = ");
    let a = sql.arg(account_id.as_str());
    sql.push(&a);
    if let Some(carrier) = filter.carrier {
        sql.push_with(" AND carrier = ?", [carrier.as_str().into()]);
    }
    if let Some(template_id) = &filter.template_id {
        sql.push_with(" AND template_id = ?", [template_id.as_str().into()]);
    }
    if let Some(phone) = &filter.phone {
        sql.push_with(" AND phone = ?", [phone.as_str().into()]);
    }
    let (rows, total) = fetch_page(&db.read, COLUMNS, &sql, "created_at DESC, id DESC", page).await?;
    Ok(Page { items: rows.iter().map(from_row).collect::<StoreResult<_>>()?, total })
}

/// A partial update: `None` leaves a field as it is; `Some(None)` clears the name.
/// The phone itself never changes.
#[derive(Default)]
pub struct PhoneNumberPatch {
    pub template_id: Option<Id>,
    pub variables: Option<BTreeMap<String, String>>,
    /// A new carrier, with the carrier account the number was checked against.
    pub carrier: Option<(CarrierKind, Option<Id>)>,
    pub name: Option<Option<String>>,
}

pub enum UpdateOutcome {
    Updated(PhoneNumber),
    NotFound,
    TemplateNotFound,
    /// The new carrier's route has the number already.
    PhoneTaken,
}

pub async fn update(db: &Db, account_id: &Id, id: &Id, patch: PhoneNumberPatch) -> StoreResult<UpdateOutcome> {
    let mut tx = db.write.begin().await?;
    let row =
        sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM phone_numbers WHERE account_id = $1 AND id = $2")))
            .bind(account_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else { return Ok(UpdateOutcome::NotFound) };
    let mut number = from_row(&row)?;
    if let Some(template_id) = patch.template_id {
        if !template_exists_locked(&mut tx, db.backend, account_id, &template_id).await? {
            return Ok(UpdateOutcome::TemplateNotFound);
        }
        number.template_id = template_id;
    }
    if let Some(v) = patch.variables {
        number.variables = v;
    }
    if let Some((carrier, carrier_id)) = patch.carrier {
        number.carrier = carrier;
        number.carrier_id = carrier_id;
    }
    let phone = Phone::parse(&number.phone).map_err(|_| StoreError::Corrupt(format!("phone: '{}'", number.phone)))?;
    let new_route = route(account_id, number.carrier, number.carrier_id.as_ref(), &phone);
    let taken = sqlx::query("SELECT id FROM phone_numbers WHERE route = $1 AND id <> $2")
        .bind(&new_route)
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Ok(UpdateOutcome::PhoneTaken);
    }
    if let Some(v) = patch.name {
        number.name = v;
    }
    number.updated_at = Timestamp::now();
    sqlx::query(
        "UPDATE phone_numbers SET template_id = $1, variables = $2, carrier = $3, carrier_id = $4, route = $5, \
         name = $6, updated_at = $7 WHERE account_id = $8 AND id = $9",
    )
    .bind(number.template_id.as_str())
    .bind(to_json(&number.variables))
    .bind(number.carrier.as_str())
    .bind(number.carrier_id.as_ref().map(Id::as_str))
    .bind(new_route)
    .bind(number.name.clone())
    .bind(number.updated_at.to_db())
    .bind(account_id.as_str())
    .bind(id.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(UpdateOutcome::Updated(number))
}

/// False when the account has no such number.
pub async fn delete(db: &Db, account_id: &Id, id: &Id) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM phone_numbers WHERE account_id = $1 AND id = $2")
        .bind(account_id.as_str())
        .bind(id.as_str())
        .execute(&db.write)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The account's numbers whose inbound calls run the template, oldest first.
pub async fn ids_using_template(conn: &mut AnyConnection, account_id: &Id, template_id: &Id) -> StoreResult<Vec<Id>> {
    sqlx::query("SELECT id FROM phone_numbers WHERE account_id = $1 AND template_id = $2 ORDER BY created_at, id")
        .bind(account_id.as_str())
        .bind(template_id.as_str())
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.text("id").map(Id::from_trusted))
        .collect()
}
