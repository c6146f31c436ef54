//! `/v1/contact-lists`: named groups of contacts (the spec's `contactListIds` on
//! campaigns). CRUD, members, and a streamed CSV import that upserts contacts by phone.

use std::collections::HashSet;
use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use csv_async::{AsyncReaderBuilder, ByteRecord};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_util::io::StreamReader;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::contacts::validate_fields;
use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, PathIds, QueryParams};
use super::pagination::Paginated;
use super::{double_option, validate};
use crate::app::AppState;
use crate::domain::{Id, Phone};
use crate::store::StoreError;
use crate::store::contact_lists::{self, AddMembers, ContactList, ContactListPatch, RemoveMember};
use crate::store::contacts::{self, Contact, ContactFields, ListFilter};

/// The body limit of `POST /contact-lists/{id}/import` (JSON bodies keep theirs).
pub const CSV_BODY_LIMIT: usize = 50 * 1024 * 1024;
/// Columns an import's header row may have (the standard ones plus custom fields).
pub const MAX_IMPORT_COLUMNS: usize = 100;
/// Data rows one import may have; rows past it are not read (those before stay imported).
pub const MAX_IMPORT_ROWS: u64 = 200_000;
/// Rows written per transaction during an import.
const IMPORT_BATCH: usize = 500;
/// Row errors reported in an import response; more set `errorsTruncated`.
const MAX_IMPORT_ERRORS: usize = 1000;
/// Ids accepted in one `contactIds` array.
const MAX_CONTACT_IDS: usize = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_list, list_lists))
        .routes(routes!(get_list, update_list, delete_list))
        .routes(routes!(list_members, add_members))
        .routes(routes!(remove_member))
        .routes(routes!(import_contacts))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateContactList {
    #[schema(example = "Spring leads")]
    pub name: String,
    #[schema(example = "Leads from the April trade show")]
    pub description: Option<String>,
    /// Initial members: contacts of your account (duplicates are ignored).
    #[serde(default)]
    #[schema(example = json!(["60a2e7f3b9c1a83e94d8f2a1", "60a2e7f3b9c1a83e94d8f2a2"]))]
    pub contact_ids: Vec<Id>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateContactList {
    #[schema(example = "Spring leads (qualified)")]
    pub name: Option<String>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMembersRequest {
    /// Contacts of your account to add (1 to 10 000; existing members are skipped).
    #[schema(example = json!(["60a2e7f3b9c1a83e94d8f2a1", "60a2e7f3b9c1a83e94d8f2a2"]))]
    pub contact_ids: Vec<Id>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddMembersResponse {
    /// Contacts that were not members before.
    #[schema(example = 2)]
    pub added: i64,
    /// Members of the list now.
    #[schema(example = 252)]
    pub contact_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRowError {
    /// Line of the CSV where the row starts (the header row is line 1).
    #[schema(example = 7)]
    pub row: u64,
    /// The offending field (`phone`, `email`, a custom column, ...); `null` when the row
    /// as a whole is wrong (e.g. the wrong number of fields).
    #[schema(example = "phone")]
    pub field: Option<String>,
    #[schema(example = "must be an E.164 phone number starting with '+', e.g. +15551234567")]
    pub message: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    #[schema(example = "60a2e7f3b9c1a83e94d8f2d1")]
    pub list_id: Id,
    /// Data rows read (the header row is not counted).
    #[schema(example = 1000)]
    pub total_rows: u64,
    /// Rows that created a contact.
    #[schema(example = 950)]
    pub created: u64,
    /// Rows that updated an existing contact with the same phone.
    #[schema(example = 47)]
    pub updated: u64,
    /// Rows rejected (listed in `errors`).
    #[schema(example = 3)]
    pub failed: u64,
    /// The first 1000 row errors, in file order.
    pub errors: Vec<ImportRowError>,
    /// Whether more rows failed than `errors` lists.
    pub errors_truncated: bool,
}

impl ImportResult {
    fn empty(list_id: Id) -> ImportResult {
        ImportResult {
            list_id,
            total_rows: 0,
            created: 0,
            updated: 0,
            failed: 0,
            errors: Vec::new(),
            errors_truncated: false,
        }
    }
}

/// Ids in `contactIds` that are not contacts of the account: a 404 listing them.
fn missing_contacts(missing: Vec<Id>) -> ApiError {
    ApiError::MissingReferences {
        resource: "Contacts",
        field: "contactIds".into(),
        missing: missing.into_iter().map(Id::into_string).collect(),
    }
}

/// Validates a `contactIds` array: bounded, duplicates dropped (first occurrence kept).
fn contact_ids(ids: Vec<Id>, allow_empty: bool) -> ApiResult<Vec<Id>> {
    if ids.is_empty() && !allow_empty {
        return Err(ApiError::invalid("contactIds", "must contain at least one id"));
    }
    if ids.len() > MAX_CONTACT_IDS {
        return Err(ApiError::invalid("contactIds", format!("at most {MAX_CONTACT_IDS} ids per request")));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    Ok(ids.into_iter().filter(|id| seen.insert(id.clone())).collect())
}

fn description(value: &str) -> ApiResult<Option<String>> {
    validate::optional_text("description", value, 1000)
}

/// Create a contact list
///
/// Optionally with initial members (`contactIds`, contacts of your account). If any id is
/// not a contact of your account the list is not created: 404 with the unknown ids in
/// `details.missing`.
#[utoipa::path(post, path = "/contact-lists", tag = "contact-lists", request_body = CreateContactList,
    responses((status = 201, description = "Contact list created", body = ContactList), ErrorResponses),
    security(("bearer" = [])))]
async fn create_list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateContactList>,
) -> ApiResult<(StatusCode, Json<ContactList>)> {
    let name = validate::required_text("name", &body.name, 200)?;
    let description = body.description.as_deref().map(description).transpose()?.flatten();
    let ids = contact_ids(body.contact_ids, true)?;
    match contact_lists::create(&state.db, &who.account_id, name, description, &ids).await? {
        Ok(list) => Ok((StatusCode::CREATED, Json(list))),
        Err(missing) => Err(missing_contacts(missing)),
    }
}

/// List contact lists
///
/// Newest first; each item has its `contactCount`.
#[utoipa::path(get, path = "/contact-lists", tag = "contact-lists",
    params(
        ("search" = Option<String>, Query, description = "Case-insensitive match on the name"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<ContactList>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_lists(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<ContactList>>> {
    let page = q.page()?;
    let result = contact_lists::list(&state.db, &who.account_id, q.get("search"), page).await?;
    Ok(Json(Paginated::new(result, page)))
}

/// Get a contact list
#[utoipa::path(get, path = "/contact-lists/{id}", tag = "contact-lists",
    params(("id" = String, Path, description = "Contact list id")),
    responses((status = 200, body = ContactList), ErrorResponses),
    security(("bearer" = [])))]
async fn get_list(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<ContactList>> {
    let list = contact_lists::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Contact list"))?;
    Ok(Json(list))
}

/// Update a contact list
///
/// Only the fields given change; `"description": null` clears the description.
#[utoipa::path(patch, path = "/contact-lists/{id}", tag = "contact-lists", request_body = UpdateContactList,
    params(("id" = String, Path, description = "Contact list id")),
    responses((status = 200, body = ContactList), ErrorResponses),
    security(("bearer" = [])))]
async fn update_list(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateContactList>,
) -> ApiResult<Json<ContactList>> {
    let patch = ContactListPatch {
        name: body.name.map(|n| validate::required_text("name", &n, 200)).transpose()?,
        description: body
            .description
            .map(|d| d.as_deref().map(description).transpose().map(Option::flatten))
            .transpose()?,
    };
    let list = contact_lists::update(&state.db, &who.account_id, &id, patch)
        .await?
        .ok_or(ApiError::not_found("Contact list"))?;
    Ok(Json(list))
}

/// Delete a contact list
///
/// Removes the list and its memberships; the contacts themselves are kept, and campaigns
/// already created from the list keep their audience.
#[utoipa::path(delete, path = "/contact-lists/{id}", tag = "contact-lists",
    params(("id" = String, Path, description = "Contact list id")),
    responses((status = 204, description = "Contact list deleted (its contacts are kept)"), ErrorResponses),
    security(("bearer" = [])))]
async fn delete_list(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<StatusCode> {
    if contact_lists::delete(&state.db, &who.account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Contact list"))
    }
}

/// List the contacts in a list
///
/// Same items, order and filters as `GET /contacts`.
#[utoipa::path(get, path = "/contact-lists/{id}/contacts", tag = "contact-lists",
    params(
        ("id" = String, Path, description = "Contact list id"),
        ("tag" = Option<String>, Query, description = "Only contacts with this tag"),
        ("search" = Option<String>, Query, description = "Case-insensitive match on name, email or phone"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<Contact>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_members(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    q: QueryParams,
) -> ApiResult<Json<Paginated<Contact>>> {
    let page = q.page()?;
    if !contact_lists::exists(&state.db, &who.account_id, &id).await? {
        return Err(ApiError::not_found("Contact list"));
    }
    let filter = ListFilter {
        tag: q.get("tag").map(str::to_owned),
        search: q.get("search").map(str::to_owned),
        list_id: Some(id),
    };
    let result = contacts::list(&state.db, &who.account_id, &filter, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

/// Add contacts to a list
///
/// Idempotent: contacts already in the list are skipped and not counted in `added`. All
/// or nothing: if any id is not a contact of your account, nothing is added and the
/// response is a 404 with the unknown ids in `details.missing`.
#[utoipa::path(post, path = "/contact-lists/{id}/contacts", tag = "contact-lists", request_body = AddMembersRequest,
    params(("id" = String, Path, description = "Contact list id")),
    responses((status = 200, body = AddMembersResponse), ErrorResponses),
    security(("bearer" = [])))]
async fn add_members(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<AddMembersRequest>,
) -> ApiResult<Json<AddMembersResponse>> {
    let ids = contact_ids(body.contact_ids, false)?;
    match contact_lists::add_members(&state.db, &who.account_id, &id, &ids).await? {
        AddMembers::ListNotFound => Err(ApiError::not_found("Contact list")),
        AddMembers::Missing(missing) => Err(missing_contacts(missing)),
        AddMembers::Added { added, contact_count } => Ok(Json(AddMembersResponse { added, contact_count })),
    }
}

/// Remove a contact from a list
///
/// The contact itself is kept. 404 if the contact is not in the list.
#[utoipa::path(delete, path = "/contact-lists/{id}/contacts/{contactId}", tag = "contact-lists",
    params(
        ("id" = String, Path, description = "Contact list id"),
        ("contactId" = String, Path, description = "Contact id"),
    ),
    responses((status = 204, description = "Contact removed from the list"), ErrorResponses),
    security(("bearer" = [])))]
async fn remove_member(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathIds(id, contact_id): PathIds,
) -> ApiResult<StatusCode> {
    match contact_lists::remove_member(&state.db, &who.account_id, &id, &contact_id).await? {
        RemoveMember::ListNotFound => Err(ApiError::not_found("Contact list")),
        RemoveMember::NotAMember => {
            Err(ApiError::NotFound { resource: "Contact list member", field: Some("contactId".into()) })
        }
        RemoveMember::Removed => Ok(StatusCode::NO_CONTENT),
    }
}

/// Import contacts from CSV into a list
///
/// Send the file as the raw body with `Content-Type: text/csv` (UTF-8, up to 50 MiB,
/// 200 000 data rows and 100 columns, else a 413 `payload_too_large`; it is streamed, so
/// 100 000 rows import in seconds). The first row is the header.
/// Header names are matched case-insensitively: `name`, `phone` (required column,
/// E.164), `email`, `company`, `tags` (several tags separated by `;`), `doNotCall` or
/// `do_not_call` (`true`/`false`/`1`/`0`/`yes`/`no`, empty = false). Every other column
/// goes into `customFields` under its header name, as a string; empty cells are left out.
/// When `name` is missing or empty, the contact is named after its phone number.
///
/// Each row creates a contact, or updates the contact of your account with the same phone
/// number (so re-importing a file updates instead of duplicating: name, email, company,
/// tags and custom fields are replaced by the row's; `doNotCall` is never cleared by an
/// import), and adds it to the list. Rows that fail validation or have the wrong number
/// of fields are skipped and reported in `errors` with their line number; the rest are
/// imported. Rows are written in batches of 500 as the upload arrives: if the upload
/// breaks off or exceeds the limit, the batches already written stay imported.
///
/// A missing `phone` column, an empty body or an unreadable header row is a 400 before
/// anything is written. `Idempotency-Key` replay does not apply to CSV uploads (only
/// JSON requests are replayed); re-sending the same file is safe anyway, since rows are
/// matched by phone.
#[utoipa::path(post, path = "/contact-lists/{id}/import", tag = "contact-lists",
    params(("id" = String, Path, description = "Contact list id")),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row",
        example = "name,phone,email,company,tags,doNotCall,industry\nJohn Smith,+15551234567,john.smith@example.com,Acme Inc,customer;vip,false,Technology\n"),
    responses((status = 200, description = "Import finished (see `failed` and `errors` for rejected rows)", body = ImportResult), ErrorResponses),
    security(("bearer" = [])))]
async fn import_contacts(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(list_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportResult>> {
    let is_csv = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType { expected: "text/csv" });
    }
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > CSV_BODY_LIMIT as u64) {
        return Err(ApiError::PayloadTooLarge { limit: CSV_BODY_LIMIT });
    }
    if !contact_lists::exists(&state.db, &who.account_id, &list_id).await? {
        return Err(ApiError::not_found("Contact list"));
    }

    // Count bytes as they stream in: chunked uploads have no Content-Length to check.
    let mut received = 0usize;
    let stream = body.into_data_stream().map_err(io::Error::other).and_then(move |chunk| {
        received += chunk.len();
        let result = if received > CSV_BODY_LIMIT { Err(io::Error::other(TooLarge)) } else { Ok(chunk) };
        std::future::ready(result)
    });
    let mut reader =
        AsyncReaderBuilder::new().has_headers(false).flexible(true).create_reader(StreamReader::new(stream));

    let columns = read_header(&mut reader).await?;

    // Rows are validated here while a writer task stores the previous batch, so parsing
    // and database work overlap; the channel bounds what is held in memory.
    let (batches, mut queue) = tokio::sync::mpsc::channel::<Vec<ContactFields>>(2);
    let writer = {
        let (db, account_id, list_id) = (state.db.clone(), who.account_id.clone(), list_id.clone());
        tokio::spawn(async move {
            let (mut created, mut updated) = (0, 0);
            while let Some(batch) = queue.recv().await {
                let counts = contacts::upsert_batch(&db, &account_id, &batch, Some(&list_id)).await?;
                created += counts.created as u64;
                updated += counts.updated as u64;
            }
            if created + updated > 0 {
                contact_lists::touch(&db.write, &list_id).await?;
            }
            Ok::<_, StoreError>((created, updated))
        })
    };
    let mut result = ImportResult::empty(list_id);
    let read = read_rows(&mut reader, &columns, &batches, &mut result).await;
    drop(batches);
    // Even after a read error, batches already queued are written (and reported by the
    // writer's result) before answering.
    let written = writer.await.map_err(|e| ApiError::Internal(e.into()))?;
    read?;
    (result.created, result.updated) = written?;
    Ok(Json(result))
}

/// Reads the header row and maps its columns.
async fn read_header<R: tokio::io::AsyncRead + Unpin + Send>(
    reader: &mut csv_async::AsyncReader<R>,
) -> ApiResult<Columns> {
    let mut record = ByteRecord::new();
    if !reader.read_byte_record(&mut record).await.map_err(read_error)? || is_blank(&record) {
        return Err(ApiError::InvalidRequest {
            message: "The CSV body is empty; a header row is required".into(),
            details: json!({"reason": "empty body"}),
        });
    }
    Columns::from_header(&record)
}

/// Reads an import body as `import_contacts` does, storing nothing: `created` counts the rows
/// that would be written. For the CSV importer's fuzz target (`fuzz/fuzz_targets/csv_import.rs`).
pub async fn dry_run_import(body: &[u8]) -> ApiResult<ImportResult> {
    let mut reader = AsyncReaderBuilder::new().has_headers(false).flexible(true).create_reader(body);
    let columns = read_header(&mut reader).await?;
    let (batches, mut queue) = tokio::sync::mpsc::channel::<Vec<ContactFields>>(2);
    let drain = tokio::spawn(async move {
        let mut rows = 0;
        while let Some(batch) = queue.recv().await {
            rows += batch.len() as u64;
        }
        rows
    });
    let mut result = ImportResult::empty(Id::generate());
    let read = read_rows(&mut reader, &columns, &batches, &mut result).await;
    drop(batches);
    result.created = drain.await.map_err(|e| ApiError::Internal(e.into()))?;
    read.map(|_| result)
}

/// Reads and validates the data rows, sending full batches to the writer.
async fn read_rows<R: tokio::io::AsyncRead + Unpin + Send>(
    reader: &mut csv_async::AsyncReader<R>,
    columns: &Columns,
    batches: &tokio::sync::mpsc::Sender<Vec<ContactFields>>,
    result: &mut ImportResult,
) -> ApiResult<()> {
    let mut record = ByteRecord::new();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    while reader.read_byte_record(&mut record).await.map_err(read_error)? {
        if result.total_rows == MAX_IMPORT_ROWS {
            if !batch.is_empty() {
                let _ = batches.send(batch).await;
            }
            return Err(ApiError::TooMany { what: "rows", limit: MAX_IMPORT_ROWS as usize });
        }
        result.total_rows += 1;
        match columns.row(&record) {
            Ok(fields) => batch.push(fields),
            Err((field, message)) => {
                result.failed += 1;
                if result.errors.len() < MAX_IMPORT_ERRORS {
                    let row = record.position().map_or(0, |p| p.line());
                    result.errors.push(ImportRowError { row, field, message });
                } else {
                    result.errors_truncated = true;
                }
            }
        }
        if batch.len() == IMPORT_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
            // The writer only stops early on a database error, which its result reports.
            if batches.send(full).await.is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.send(batch).await;
    }
    Ok(())
}

/// Marks the stream error raised when the body outgrows `CSV_BODY_LIMIT`.
#[derive(Debug, thiserror::Error)]
#[error("request body too large")]
struct TooLarge;

fn read_error(e: csv_async::Error) -> ApiError {
    if let csv_async::ErrorKind::Io(io) = e.kind()
        && io.get_ref().is_some_and(|inner| inner.is::<TooLarge>())
    {
        return ApiError::PayloadTooLarge { limit: CSV_BODY_LIMIT };
    }
    ApiError::InvalidRequest {
        message: "Could not read the CSV body".into(),
        details: json!({"reason": e.to_string()}),
    }
}

fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// What a CSV column holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Column {
    Name,
    Phone,
    Email,
    Company,
    Tags,
    DoNotCall,
    Custom(String),
    /// A column with an empty header (e.g. a trailing comma): its cells are ignored.
    Ignored,
}

impl Column {
    /// The field name used in row errors.
    fn field(&self) -> String {
        match self {
            Column::Name => "name".into(),
            Column::Phone => "phone".into(),
            Column::Email => "email".into(),
            Column::Company => "company".into(),
            Column::Tags => "tags".into(),
            Column::DoNotCall => "doNotCall".into(),
            Column::Custom(header) => header.clone(),
            Column::Ignored => String::new(),
        }
    }
}

/// The header row, mapped to columns.
#[derive(Debug)]
struct Columns(Vec<Column>);

impl Columns {
    fn from_header(record: &ByteRecord) -> ApiResult<Columns> {
        if record.len() > MAX_IMPORT_COLUMNS {
            return Err(ApiError::TooMany { what: "columns", limit: MAX_IMPORT_COLUMNS });
        }
        let mut columns = Vec::with_capacity(record.len());
        let mut seen = std::collections::HashSet::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            let text = std::str::from_utf8(raw)
                .map_err(|_| ApiError::invalid("header", "the header row is not valid UTF-8"))?;
            // Spreadsheet exports often start with a UTF-8 byte order mark.
            let text = if i == 0 { text.trim_start_matches('\u{feff}') } else { text }.trim();
            let column = match text.to_lowercase().as_str() {
                "" => Column::Ignored,
                "name" => Column::Name,
                "phone" => Column::Phone,
                "email" => Column::Email,
                "company" => Column::Company,
                "tags" => Column::Tags,
                "donotcall" | "do_not_call" => Column::DoNotCall,
                _ => Column::Custom(text.to_owned()),
            };
            if column != Column::Ignored && !seen.insert(column.clone()) {
                return Err(ApiError::invalid(text, "the column appears more than once in the header row"));
            }
            columns.push(column);
        }
        if !columns.contains(&Column::Phone) {
            return Err(ApiError::invalid("phone", "the header row has no 'phone' column"));
        }
        Ok(Columns(columns))
    }

    /// Validates one data row; an error names the field (if any) and says what is wrong.
    fn row(&self, record: &ByteRecord) -> Result<ContactFields, (Option<String>, String)> {
        if record.len() != self.0.len() {
            return Err((
                None,
                format!("expected {} fields as in the header row, found {}", self.0.len(), record.len()),
            ));
        }
        let (mut name, mut phone, mut email, mut company) = ("", "", None, None);
        let mut tags = Vec::new();
        let mut do_not_call = false;
        let mut custom_fields = Map::new();
        for (column, raw) in self.0.iter().zip(record.iter()) {
            if *column == Column::Ignored {
                continue;
            }
            let value =
                std::str::from_utf8(raw).map_err(|_| (Some(column.field()), "is not valid UTF-8".to_owned()))?;
            match column {
                Column::Name => name = value.trim(),
                Column::Phone => phone = value.trim(),
                Column::Email => email = Some(value),
                Column::Company => company = Some(value),
                Column::Tags => {
                    tags = value.split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
                }
                Column::DoNotCall => {
                    do_not_call = parse_flag(value)
                        .ok_or_else(|| (Some(column.field()), "must be one of true, false, 1, 0, yes, no".to_owned()))?
                }
                Column::Custom(header) => {
                    if !value.trim().is_empty() {
                        custom_fields.insert(header.clone(), Value::String(value.to_owned()));
                    }
                }
                Column::Ignored => {}
            }
        }
        // A contact needs a name: without one it is named after its (normalised) number.
        let fallback;
        if name.is_empty() {
            fallback = Phone::parse(phone).map_err(|e| (Some("phone".to_owned()), e.to_string()))?;
            name = fallback.as_str();
        }
        validate_fields(name, phone, email, company, tags, custom_fields, do_not_call).map_err(|e| match e {
            ApiError::InvalidParameter { field, reason } => (Some(field), reason),
            other => (None, other.to_string()),
        })
    }
}

/// A `doNotCall` cell; empty means false.
fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" => Some(false),
        "true" | "1" | "yes" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> ByteRecord {
        ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn header_is_matched_case_insensitively_and_trimmed() {
        let c = Columns::from_header(&record(&["\u{feff}Name", " PHONE ", "Do_Not_Call", "doNotCall2", ""])).unwrap();
        assert_eq!(
            c.0,
            [Column::Name, Column::Phone, Column::DoNotCall, Column::Custom("doNotCall2".into()), Column::Ignored]
        );
        let e = Columns::from_header(&record(&["name", "email"])).unwrap_err();
        assert!(matches!(e, ApiError::InvalidParameter { ref field, .. } if field == "phone"));
        let e = Columns::from_header(&record(&["phone", "Phone"])).unwrap_err();
        assert!(matches!(e, ApiError::InvalidParameter { ref field, .. } if field == "Phone"));
    }

    #[test]
    fn rows_become_contact_fields() {
        let c = Columns::from_header(&record(&["phone", "name", "tags", "doNotCall", "industry", "notes"])).unwrap();
        let f = c.row(&record(&["+15551234567", "", " a ; b;;a", "YES", "Tech", " "])).unwrap();
        assert_eq!(f.name, "+15551234567", "named after the phone");
        assert_eq!(f.tags, ["a", "b"]);
        assert!(f.do_not_call);
        assert_eq!(Value::Object(f.custom_fields), json!({"industry": "Tech"}));
        let (field, _) = c.row(&record(&["+15551234567", "A", "", "maybe", "", ""])).unwrap_err();
        assert_eq!(field.as_deref(), Some("doNotCall"));
        let (field, _) = c.row(&record(&["555", "A", "", "", "", ""])).unwrap_err();
        assert_eq!(field.as_deref(), Some("phone"));
        let (field, message) = c.row(&record(&["+15551234567", "A"])).unwrap_err();
        assert_eq!(field, None);
        assert!(message.contains("expected 6 fields"), "{message}");
    }

    #[test]
    fn flags() {
        for (v, want) in [("", Some(false)), ("0", Some(false)), ("No", Some(false)), ("TRUE", Some(true)), ("2", None)]
        {
            assert_eq!(parse_flag(v), want, "{v}");
        }
    }
}
