//! `/v1/phone-numbers`: the inbound numbers an account owns. Each maps to a template
//! (with the values of its variables) and a carrier; an inbound call to the number is
//! answered with that template. A Twilio number must belong to the account's Twilio account
//! (its own carrier, else the gateway's default): Twilio's IncomingPhoneNumbers is asked.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::calls::{given_variables, require_template_variables};
use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, QueryParams};
use super::pagination::Paginated;
use super::templates::not_null;
use super::{double_option, validate};
use crate::app::AppState;
use crate::domain::status::CarrierKind;
use crate::domain::{Id, Phone};
use crate::store::phone_numbers::{
    self as store, CreateOutcome, ListFilter, NewPhoneNumber, PhoneNumber, PhoneNumberPatch, UpdateOutcome,
};
use crate::store::templates;
use crate::telephony::twilio::rest::NumberList;

const MAX_NAME: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_phone_number, list_phone_numbers)).routes(routes!(
        get_phone_number,
        update_phone_number,
        delete_phone_number
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "phone": "+15557654321",
    "templateId": "60a2e7f3b9c1a83e94d8f2b2",
    "variables": {"companyName": "Acme Inc", "productName": "Premium Widget"},
    "carrier": "simulator",
    "name": "Support line"
}))]
pub struct CreatePhoneNumber {
    /// The inbound number in E.164 form. On `twilio` it must be a number of the account's
    /// Twilio account (`/v1/carriers`, else the gateway's default), checked with Twilio; an
    /// inbound call to it is routed to this account, so a number registered already is a 409.
    #[schema(example = "+15557654321")]
    pub phone: String,
    /// The template of this account that inbound calls to the number run.
    pub template_id: Id,
    /// Values for the template's variables on every inbound call (strings; numbers and
    /// booleans are turned into strings). Every variable the template lists needs a value,
    /// since the caller may be no known contact.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
    /// The carrier that delivers the number's calls: `simulator` (the embedded virtual
    /// carrier, the default), `twilio` (point the Twilio number's voice webhook at
    /// `/twilio/voice`) or `sip` (the trunk sends INVITEs to `--sip-listen`).
    pub carrier: Option<CarrierKind>,
    /// A label for people, e.g. "Support line".
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"templateId": "60a2e7f3b9c1a83e94d8f2b2", "carrier": "twilio", "name": null}))]
pub struct UpdatePhoneNumber {
    /// Inbound calls run this template of the account from now on.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Id, required = false)]
    pub template_id: Option<Option<Id>>,
    /// Replaces all values. With `templateId` or `variables` given, every variable of the
    /// (new) template needs a value.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Object, required = false)]
    pub variables: Option<Option<Map<String, Value>>>,
    /// `simulator`, `twilio` or `sip`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = CarrierKind, required = false)]
    pub carrier: Option<Option<CarrierKind>>,
    /// `null` clears the label.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Read only to refuse it by name: a number never changes (delete it and create
    /// another instead).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(ignore)]
    pub phone: Option<Option<IgnoredAny>>,
}

fn parse_phone(raw: &str) -> ApiResult<Phone> {
    Phone::parse(raw).map_err(|e| ApiError::invalid("phone", e.to_string()))
}

fn optional_name(value: Option<String>) -> ApiResult<Option<String>> {
    Ok(value.map(|v| validate::optional_text("name", &v, MAX_NAME)).transpose()?.flatten())
}

/// The values for `template_id`'s variables, checked against it; a template the account
/// does not have is a 404 naming `templateId`, as on `POST /v1/calls`.
async fn check_variables(
    state: &AppState,
    account_id: &Id,
    template_id: &Id,
    variables: &BTreeMap<String, String>,
) -> ApiResult<()> {
    let template = templates::load_script(&state.db, account_id, template_id)
        .await?
        .ok_or_else(|| ApiError::referenced_not_found("Template", "templateId"))?;
    require_template_variables(&template.variables, variables)
}

/// The carrier account a number on `carrier` belongs to, after checking with Twilio that its
/// Twilio account owns `phone` (`None`: the simulator, or the default Twilio account).
async fn owning_carrier(
    state: &AppState,
    account_id: &Id,
    carrier: CarrierKind,
    phone: &Phone,
) -> ApiResult<Option<Id>> {
    match carrier {
        // A SIP trunk has no API to ask; its numbers are the operator's (one trunk per gateway
        // for now), and its calls come only from the addresses in `--sip-allow`.
        CarrierKind::Simulator | CarrierKind::Sip => Ok(None),
        CarrierKind::Twilio => {
            let line = super::carriers::twilio_line(state, account_id, "carrier").await?;
            super::carriers::require_owned(state, &line, phone, &[NumberList::IncomingPhoneNumbers], "phone").await?;
            Ok(line.carrier_id)
        }
    }
}

fn phone_taken(phone: &Phone) -> ApiError {
    ApiError::Conflict {
        message: format!("The phone number {phone} is already registered"),
        details: json!({"field": "phone", "reason": "is already registered; a number belongs to one account"}),
    }
}

/// Register an inbound number
///
/// Inbound calls to `phone` are answered on the chosen carrier: each creates a call record
/// (`direction: "inbound"`) in this account and runs the template with `variables`.
#[utoipa::path(post, path = "/phone-numbers", tag = "phone-numbers", request_body = CreatePhoneNumber,
    responses(
        (status = 201, description = "Number registered", body = PhoneNumber),
        ErrorResponses
    ),
    security(("bearer" = [])))]
async fn create_phone_number(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreatePhoneNumber>,
) -> ApiResult<(StatusCode, Json<PhoneNumber>)> {
    let phone = parse_phone(&body.phone)?;
    let variables = given_variables(body.variables.unwrap_or_default())?;
    let name = optional_name(body.name)?;
    check_variables(&state, &who.account_id, &body.template_id, &variables).await?;
    let carrier = body.carrier.unwrap_or(CarrierKind::Simulator);
    let carrier_id = owning_carrier(&state, &who.account_id, carrier, &phone).await?;
    let new =
        NewPhoneNumber { phone: phone.clone(), template_id: body.template_id, variables, carrier, carrier_id, name };
    match store::create(&state.db, &who.account_id, new).await? {
        CreateOutcome::Created(number) => Ok((StatusCode::CREATED, Json(number))),
        // Deleted between the check above and the insert.
        CreateOutcome::TemplateNotFound => Err(ApiError::referenced_not_found("Template", "templateId")),
        CreateOutcome::PhoneTaken => Err(phone_taken(&phone)),
    }
}

/// Get an inbound number
#[utoipa::path(get, path = "/phone-numbers/{id}", tag = "phone-numbers",
    params(("id" = String, Path, description = "Phone number id")),
    responses((status = 200, body = PhoneNumber), ErrorResponses),
    security(("bearer" = [])))]
async fn get_phone_number(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<PhoneNumber>> {
    let number = store::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Phone number"))?;
    Ok(Json(number))
}

/// The `phone` filter. In a query string an unencoded '+' arrives as a space, so the
/// leading '+' may be missing; it is implied.
fn phone_filter(q: &QueryParams) -> ApiResult<Option<Phone>> {
    let Some(raw) = q.get("phone") else { return Ok(None) };
    let raw = raw.trim();
    let e164 = if raw.starts_with('+') { raw.to_owned() } else { format!("+{raw}") };
    parse_phone(&e164).map(Some)
}

/// List the account's inbound numbers
#[utoipa::path(get, path = "/phone-numbers", tag = "phone-numbers",
    params(
        ("carrier" = Option<String>, Query, description = "Only numbers on this carrier: simulator, twilio or sip"),
        ("templateId" = Option<String>, Query, description = "Only numbers that run this template"),
        ("phone" = Option<String>, Query,
            description = "Only this number (E.164, matched exactly after normalising; the leading '+' may be left out)"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, description = "Numbers, newest first", body = Paginated<PhoneNumber>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_phone_numbers(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<PhoneNumber>>> {
    let page = q.page()?;
    let filter = ListFilter {
        carrier: q.one_of("carrier", CarrierKind::parse, &CarrierKind::expected())?,
        template_id: q.id("templateId")?,
        phone: phone_filter(&q)?,
    };
    let result = store::list(&state.db, &who.account_id, &filter, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

/// Update an inbound number
///
/// Changes the template, its variables, the carrier or the label. The number itself
/// cannot change: a `phone` field is refused.
#[utoipa::path(patch, path = "/phone-numbers/{id}", tag = "phone-numbers", request_body = UpdatePhoneNumber,
    params(("id" = String, Path, description = "Phone number id")),
    responses((status = 200, body = PhoneNumber), ErrorResponses),
    security(("bearer" = [])))]
async fn update_phone_number(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdatePhoneNumber>,
) -> ApiResult<Json<PhoneNumber>> {
    if body.phone.is_some() {
        return Err(ApiError::invalid(
            "phone",
            "cannot be changed; delete this phone number and register the new one instead",
        ));
    }
    let template_id = not_null("templateId", body.template_id)?;
    let variables = not_null("variables", body.variables)?.map(given_variables).transpose()?;
    let carrier = not_null("carrier", body.carrier)?;
    let name = body.name.map(optional_name).transpose()?;
    let current = store::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Phone number"))?;
    let carrier = match carrier {
        Some(kind) => {
            let phone = parse_phone(&current.phone)?;
            Some((kind, owning_carrier(&state, &who.account_id, kind, &phone).await?))
        }
        None => None,
    };
    let patch = PhoneNumberPatch { template_id, variables, carrier, name };
    // Only a change of template or values is checked: a template edited since must not
    // block relabelling the number.
    if patch.template_id.is_some() || patch.variables.is_some() {
        let template_id = patch.template_id.as_ref().unwrap_or(&current.template_id);
        let variables = patch.variables.as_ref().unwrap_or(&current.variables);
        check_variables(&state, &who.account_id, template_id, variables).await?;
    }
    match store::update(&state.db, &who.account_id, &id, patch).await? {
        UpdateOutcome::Updated(number) => Ok(Json(number)),
        UpdateOutcome::NotFound => Err(ApiError::not_found("Phone number")),
        UpdateOutcome::TemplateNotFound => Err(ApiError::referenced_not_found("Template", "templateId")),
        UpdateOutcome::PhoneTaken => Err(phone_taken(&parse_phone(&current.phone)?)),
    }
}

/// Delete an inbound number
///
/// Inbound calls to it are no longer answered; calls already made keep their records.
#[utoipa::path(delete, path = "/phone-numbers/{id}", tag = "phone-numbers",
    params(("id" = String, Path, description = "Phone number id")),
    responses((status = 204, description = "Number deleted; it can be registered again"), ErrorResponses),
    security(("bearer" = [])))]
async fn delete_phone_number(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if store::delete(&state.db, &who.account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Phone number"))
    }
}
