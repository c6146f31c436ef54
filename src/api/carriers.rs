//! `/v1/carriers`: the account's own carrier accounts. Today one Twilio account per account:
//! its calls are placed with these credentials, its inbound numbers and caller IDs must be
//! that Twilio account's, and only webhooks it signs reach the account. The auth token is
//! checked with Twilio, sealed at rest and never shown again.
//!
//! Also the ownership checks other resources make (`twilio_line`, `require_owned`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::double_option;
use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId};
use super::validate;
use crate::app::AppState;
use crate::domain::{Id, Phone};
use crate::store::carriers::{self as store, Carrier, CarrierPatch, CreateOutcome, DeleteOutcome, NewCarrier};
use crate::store::carriers::{SealedCarrier, TWILIO};
use crate::telephony::twilio::accounts::{LineError, TwilioLine};
use crate::telephony::twilio::rest::{NumberList, TwilioRest, TwilioRestError};

const MAX_NAME: usize = 200;
const MAX_TOKEN: usize = 256;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_carrier, list_carriers)).routes(routes!(
        get_carrier,
        update_carrier,
        delete_carrier
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "type": "twilio",
    "name": "Production Twilio",
    "accountSid": "AC00000000000000000000000000000001",
    "authToken": "your_auth_token",
    "callerId": "+15005550006"
}))]
pub struct CreateCarrier {
    /// `twilio`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    /// The Twilio account SID (`AC` and 32 hex digits).
    pub account_sid: String,
    /// The account's auth token. Checked with Twilio, stored encrypted, never returned.
    pub auth_token: String,
    /// `From` for calls that give no `callerId`: a number of this Twilio account, or one it
    /// verified as a caller ID.
    pub caller_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"authToken": "the_rotated_token"}))]
pub struct UpdateCarrier {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// A rotated auth token for the same Twilio account (checked with Twilio).
    pub auth_token: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub caller_id: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct CarrierList {
    pub data: Vec<Carrier>,
}

fn account_sid(raw: &str) -> ApiResult<String> {
    let sid = raw.trim();
    let well_formed = sid.len() == 34 && sid.starts_with("AC") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(ApiError::invalid("accountSid", "must be a Twilio account SID: AC followed by 32 hex digits"));
    }
    Ok(sid.to_owned())
}

fn auth_token(raw: &str) -> ApiResult<String> {
    let token = raw.trim();
    if token.is_empty() || token.len() > MAX_TOKEN || token.chars().any(char::is_control) {
        return Err(ApiError::invalid("authToken", format!("must be 1 to {MAX_TOKEN} printable characters")));
    }
    Ok(token.to_owned())
}

fn optional_name(value: Option<String>) -> ApiResult<Option<String>> {
    Ok(value.map(|v| validate::optional_text("name", &v, MAX_NAME)).transpose()?.flatten())
}

fn carrier_error(error: TwilioRestError) -> ApiError {
    ApiError::CarrierUnavailable { message: error.to_string() }
}

/// Asks Twilio whether the credentials open the account: a wrong token is the client's
/// mistake (400), an unreachable Twilio is not (502).
async fn check_credentials(client: &TwilioRest, field: &str) -> ApiResult<()> {
    match client.fetch_account().await {
        Ok(account) if account.status == "active" => Ok(()),
        Ok(account) => Err(ApiError::invalid(field, format!("the Twilio account is {}", account.status))),
        Err(TwilioRestError::Api { status: 401 | 403 | 404, .. }) => {
            Err(ApiError::invalid(field, "Twilio refused these credentials (wrong account SID or auth token)"))
        }
        Err(error) => Err(carrier_error(error)),
    }
}

impl From<LineError> for ApiError {
    fn from(error: LineError) -> ApiError {
        match error {
            LineError::Store(e) => e.into(),
            LineError::Sealed(e) => ApiError::Internal(anyhow::Error::new(e)),
            LineError::Twilio(e) => carrier_error(e),
        }
    }
}

/// The Twilio account `account_id` acts with (its own carrier, else the gateway's default);
/// a 400 on `field` when there is none.
pub async fn twilio_line(state: &AppState, account_id: &Id, field: &str) -> ApiResult<TwilioLine> {
    state
        .calls
        .twilio
        .for_account(state, account_id)
        .await?
        .ok_or_else(|| ApiError::invalid(field, "this account has no Twilio account: add one with POST /v1/carriers"))
}

/// A 400 on `field` unless `line`'s Twilio account holds `phone` in one of `lists`.
pub async fn require_owned(
    state: &AppState,
    line: &TwilioLine,
    phone: &Phone,
    lists: &[NumberList],
    field: &str,
) -> ApiResult<()> {
    let owned = state.calls.twilio.owns(line, phone.as_str(), lists).await.map_err(carrier_error)?;
    if owned {
        return Ok(());
    }
    let what = if lists.contains(&NumberList::OutgoingCallerIds) {
        "a number or verified caller ID"
    } else {
        "a phone number"
    };
    Err(ApiError::invalid_with(
        field,
        format!("{phone} is not {what} of the Twilio account {}", line.account_sid()),
        json!({"accountSid": line.account_sid()}),
    ))
}

/// The numbers a caller ID may be: bought, or verified with Twilio.
pub const CALLER_ID_LISTS: &[NumberList] = &[NumberList::IncomingPhoneNumbers, NumberList::OutgoingCallerIds];

/// A `callerId` for calls to `phone` by `account_id`: checked against the account's Twilio
/// account when the call will go through Twilio (a simulator number needs no real caller ID).
pub async fn check_caller_id(
    state: &AppState,
    account_id: &Id,
    phone: Option<&str>,
    caller_id: &Phone,
    field: &str,
) -> ApiResult<()> {
    if phone.is_some_and(crate::telephony::simulator::callee::SimulatorCarrier::reaches) {
        return Ok(());
    }
    let Some(line) = state.calls.twilio.for_account(state, account_id).await? else { return Ok(()) };
    require_owned(state, &line, caller_id, CALLER_ID_LISTS, field).await
}

async fn checked_caller_id(client: &TwilioRest, raw: &str) -> ApiResult<String> {
    let phone = Phone::parse(raw).map_err(|e| ApiError::invalid("callerId", e.to_string()))?;
    for list in CALLER_ID_LISTS {
        if client.has_number(*list, phone.as_str()).await.map_err(carrier_error)? {
            return Ok(phone.as_str().to_owned());
        }
    }
    Err(ApiError::invalid("callerId", format!("{phone} is not a number or verified caller ID of this Twilio account")))
}

/// Add a carrier account
///
/// Registers the account's own Twilio account. The credentials are checked with Twilio
/// (`GET /2010-04-01/Accounts/{accountSid}.json`), the auth token is stored encrypted and is
/// never returned. From then on the account's calls are placed with it, its inbound numbers
/// and caller IDs must belong to it, and webhooks signed by it reach only this account.
/// Point the Twilio numbers' voice webhook at `/twilio/voice`.
#[utoipa::path(post, path = "/carriers", tag = "carriers", request_body = CreateCarrier,
    responses(
        (status = 201, description = "Carrier added", body = Carrier),
        ErrorResponses
    ),
    security(("bearer" = [])))]
async fn create_carrier(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateCarrier>,
) -> ApiResult<(StatusCode, Json<Carrier>)> {
    if body.kind != TWILIO {
        return Err(ApiError::invalid("type", "must be twilio"));
    }
    let sid = account_sid(&body.account_sid)?;
    let token = auth_token(&body.auth_token)?;
    let name = optional_name(body.name)?;
    if state.config.telephony.twilio.as_ref().is_some_and(|t| t.account_sid == sid) {
        return Err(ApiError::invalid(
            "accountSid",
            "is the gateway's default Twilio account, which every account uses",
        ));
    }
    let client = state.calls.twilio.client(&sid, &token).map_err(carrier_error)?;
    check_credentials(&client, "authToken").await?;
    let caller_id = match body.caller_id.as_deref() {
        Some(raw) => Some(checked_caller_id(&client, raw).await?),
        None => None,
    };
    let id = Id::generate();
    let sealed = state
        .secrets
        .seal(&SealedCarrier::seal_context(&id), &token)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    let new = NewCarrier { id, name, account_sid: sid, auth_token_sealed: sealed, caller_id };
    match store::create(&state.db, &who.account_id, new).await? {
        CreateOutcome::Created(carrier) => Ok((StatusCode::CREATED, Json(carrier))),
        CreateOutcome::AccountHasOne => Err(ApiError::Conflict {
            message: "This account has a Twilio carrier already".into(),
            details: json!({"field": "type", "reason": "one carrier of each type per account; update or delete it"}),
        }),
        CreateOutcome::SidTaken => Err(ApiError::Conflict {
            message: "This Twilio account is registered already".into(),
            details: json!({"field": "accountSid", "reason": "a Twilio account belongs to one account"}),
        }),
    }
}

/// List the account's carriers
#[utoipa::path(get, path = "/carriers", tag = "carriers",
    responses((status = 200, body = CarrierList), ErrorResponses), security(("bearer" = [])))]
async fn list_carriers(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<CarrierList>> {
    Ok(Json(CarrierList { data: store::list(&state.db, &who.account_id).await? }))
}

/// Get a carrier
#[utoipa::path(get, path = "/carriers/{id}", tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses((status = 200, body = Carrier), ErrorResponses), security(("bearer" = [])))]
async fn get_carrier(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<Carrier>> {
    let sealed = store::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Carrier"))?;
    Ok(Json(sealed.carrier))
}

/// Update a carrier
///
/// Renames it, rotates its auth token (checked with Twilio) or changes its default caller ID.
/// The Twilio account itself cannot change: add another carrier instead.
#[utoipa::path(patch, path = "/carriers/{id}", tag = "carriers", request_body = UpdateCarrier,
    params(("id" = String, Path, description = "Carrier id")),
    responses((status = 200, body = Carrier), ErrorResponses), security(("bearer" = [])))]
async fn update_carrier(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateCarrier>,
) -> ApiResult<Json<Carrier>> {
    let name = body.name.map(optional_name).transpose()?;
    let token = body.auth_token.as_deref().map(auth_token).transpose()?;
    let current = store::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Carrier"))?;
    let rotated = match &token {
        Some(token) => {
            let client = state.calls.twilio.client(&current.carrier.account_sid, token).map_err(carrier_error)?;
            check_credentials(&client, "authToken").await?;
            Some(client)
        }
        None => None,
    };
    let caller_id = match body.caller_id {
        Some(Some(raw)) => {
            // Checked with the new token when one is given, else with the stored one.
            let client = match rotated {
                Some(client) => client,
                None => {
                    let line = state.calls.twilio.by_carrier(&state, Some(&id)).await?;
                    line.ok_or(ApiError::not_found("Carrier"))?.carrier.rest.clone()
                }
            };
            Some(Some(checked_caller_id(&client, &raw).await?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let sealed = token
        .map(|t| state.secrets.seal(&SealedCarrier::seal_context(&id), &t))
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    let patch = CarrierPatch { name, auth_token_sealed: sealed, caller_id };
    let carrier = store::update(&state.db, &who.account_id, &id, patch).await?.ok_or(ApiError::not_found("Carrier"))?;
    Ok(Json(carrier))
}

/// Delete a carrier
///
/// The account's calls go back to the gateway's default Twilio account, if it has one. A
/// carrier that inbound numbers still use cannot be deleted: delete or move them first.
#[utoipa::path(delete, path = "/carriers/{id}", tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses((status = 204, description = "Carrier deleted; its token is gone"), ErrorResponses),
    security(("bearer" = [])))]
async fn delete_carrier(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<StatusCode> {
    match store::delete(&state.db, &who.account_id, &id).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::NotFound => Err(ApiError::not_found("Carrier")),
        DeleteOutcome::InUse { numbers } => Err(ApiError::Conflict {
            message: format!("{numbers} phone number(s) still use this carrier"),
            details: json!({"phoneNumbers": numbers}),
        }),
    }
}
