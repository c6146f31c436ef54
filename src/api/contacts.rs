//! `/v1/contacts`: create, get (with call history), list (tag, search), update, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, QueryParams};
use super::pagination::Paginated;
use super::{double_option, validate};
use crate::app::AppState;
use crate::domain::Phone;
use crate::store::contacts::{self, CallHistoryEntry, Contact, ContactFields, ContactPatch, ListFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_contact, list_contacts)).routes(routes!(
        get_contact,
        update_contact,
        delete_contact
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateContact {
    #[schema(example = "John Smith")]
    pub name: String,
    #[schema(example = "+15551234567")]
    pub phone: String,
    #[schema(example = "john.smith@example.com")]
    pub email: Option<String>,
    #[schema(example = "Acme Inc")]
    pub company: Option<String>,
    #[serde(default)]
    #[schema(example = json!(["customer", "vip"]))]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"industry": "Technology", "lastPurchase": "2025-04-15"}))]
    pub custom_fields: Map<String, Value>,
    #[serde(default)]
    pub do_not_call: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateContact {
    pub name: Option<String>,
    pub phone: Option<String>,
    /// `null` clears the email.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    pub do_not_call: Option<bool>,
}

/// A contact with its calls, as `GET /contacts/{id}` returns it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactDetails {
    #[serde(flatten)]
    pub contact: Contact,
    pub call_history: Vec<CallHistoryEntry>,
}

/// Custom fields a contact may hold, and their sizes.
pub const MAX_CUSTOM_FIELDS: usize = 100;
pub const MAX_CUSTOM_FIELD_NAME: usize = 100;
/// Bytes of one field's value, as JSON.
pub const MAX_CUSTOM_FIELD_VALUE: usize = 2048;
/// Bytes of all of a contact's custom fields, as JSON.
pub const MAX_CUSTOM_FIELDS_TOTAL: usize = 16 * 1024;

/// Bounds a contact's `customFields` (count, name and value sizes, total size), for POST,
/// PATCH and CSV rows alike.
pub fn custom_fields_checked(fields: Map<String, Value>) -> ApiResult<Map<String, Value>> {
    if fields.len() > MAX_CUSTOM_FIELDS {
        return Err(ApiError::invalid("customFields", format!("at most {MAX_CUSTOM_FIELDS} fields")));
    }
    let mut total = 0;
    for (name, value) in &fields {
        if name.trim().is_empty() || name.chars().count() > MAX_CUSTOM_FIELD_NAME {
            return Err(ApiError::invalid(
                "customFields",
                format!("field names must be 1 to {MAX_CUSTOM_FIELD_NAME} characters"),
            ));
        }
        let size = value.to_string().len();
        if size > MAX_CUSTOM_FIELD_VALUE {
            return Err(ApiError::invalid(
                format!("customFields.{name}"),
                format!("at most {MAX_CUSTOM_FIELD_VALUE} bytes as JSON"),
            ));
        }
        total += name.len() + size;
    }
    if total > MAX_CUSTOM_FIELDS_TOTAL {
        return Err(ApiError::invalid("customFields", format!("at most {MAX_CUSTOM_FIELDS_TOTAL} bytes in all")));
    }
    Ok(fields)
}

/// Validates contact fields as given in JSON or a CSV row.
pub fn validate_fields(
    name: &str,
    phone: &str,
    email: Option<&str>,
    company: Option<&str>,
    tags: Vec<String>,
    custom_fields: Map<String, Value>,
    do_not_call: bool,
) -> ApiResult<ContactFields> {
    let name = validate::required_text("name", name, 200)?;
    let phone = Phone::parse(phone).map_err(|e| ApiError::invalid("phone", e.to_string()))?;
    let email = email.map(|e| validate::email("email", e)).transpose()?.flatten();
    let company = company.map(|c| validate::optional_text("company", c, 200)).transpose()?.flatten();
    let tags = validate::tags("tags", tags)?;
    let custom_fields = custom_fields_checked(custom_fields)?;
    Ok(ContactFields { name, phone, email, company, tags, custom_fields, do_not_call })
}

#[utoipa::path(post, path = "/contacts", tag = "contacts", request_body = CreateContact,
    responses((status = 201, description = "Contact created", body = Contact), ErrorResponses),
    security(("bearer" = [])))]
async fn create_contact(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateContact>,
) -> ApiResult<(StatusCode, Json<Contact>)> {
    let fields = validate_fields(
        &body.name,
        &body.phone,
        body.email.as_deref(),
        body.company.as_deref(),
        body.tags,
        body.custom_fields,
        body.do_not_call,
    )?;
    let contact = contacts::create(&state.db, &who.account_id, fields).await?;
    Ok((StatusCode::CREATED, Json(contact)))
}

#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses((status = 200, body = ContactDetails), ErrorResponses),
    security(("bearer" = [])))]
async fn get_contact(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<ContactDetails>> {
    let contact = contacts::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Contact"))?;
    let call_history = contacts::call_history(&state.db, &who.account_id, &id).await?;
    Ok(Json(ContactDetails { contact, call_history }))
}

#[utoipa::path(get, path = "/contacts", tag = "contacts",
    params(
        ("tag" = Option<String>, Query, description = "Only contacts with this tag"),
        ("search" = Option<String>, Query, description = "Case-insensitive match on name, email or phone"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<Contact>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_contacts(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<Contact>>> {
    let page = q.page()?;
    let filter =
        ListFilter { tag: q.get("tag").map(str::to_owned), search: q.get("search").map(str::to_owned), list_id: None };
    let result = contacts::list(&state.db, &who.account_id, &filter, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts", request_body = UpdateContact,
    params(("id" = String, Path, description = "Contact id")),
    responses((status = 200, body = Contact), ErrorResponses),
    security(("bearer" = [])))]
async fn update_contact(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateContact>,
) -> ApiResult<Json<Contact>> {
    let patch = ContactPatch {
        name: body.name.map(|n| validate::required_text("name", &n, 200)).transpose()?,
        phone: body
            .phone
            .map(|p| Phone::parse(&p).map_err(|e| ApiError::invalid("phone", e.to_string())))
            .transpose()?,
        email: body
            .email
            .map(|e| e.map(|e| validate::email("email", &e)).transpose().map(Option::flatten))
            .transpose()?,
        company: body
            .company
            .map(|c| c.map(|c| validate::optional_text("company", &c, 200)).transpose().map(Option::flatten))
            .transpose()?,
        tags: body.tags.map(|t| validate::tags("tags", t)).transpose()?,
        custom_fields: body.custom_fields.map(custom_fields_checked).transpose()?,
        do_not_call: body.do_not_call,
    };
    let contact =
        contacts::update(&state.db, &who.account_id, &id, patch).await?.ok_or(ApiError::not_found("Contact"))?;
    Ok(Json(contact))
}

#[utoipa::path(delete, path = "/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id")),
    responses((status = 204, description = "Contact deleted; its past calls keep their contactId"), ErrorResponses),
    security(("bearer" = [])))]
async fn delete_contact(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<StatusCode> {
    if contacts::delete(&state.db, &who.account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Contact"))
    }
}
