//! `/v1/calls`: create (checked against the template and the contact), get, list
//! (status, contact, campaign, date range) and cancel.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, QueryParams};
use super::pagination::Paginated;
use crate::app::AppState;
use crate::domain::status::{CallDirection, CallStatus};
use crate::domain::template::is_variable_name;
use crate::domain::{Id, Phone, Timestamp};
use crate::store::calls::{self, Call, CancelOutcome, ListFilter, NewCall};
use crate::store::contacts::{self, scalar_text};
use crate::store::templates;

const MAX_VARIABLES: usize = 100;
const MAX_VARIABLE_VALUE: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_call, list_calls)).routes(routes!(get_call)).routes(routes!(cancel_call))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "phone": "+15551234567",
    "contactId": "60a2e7f3b9c1a83e94d8f2a1",
    "templateId": "60a2e7f3b9c1a83e94d8f2b2",
    "variables": {"companyName": "Acme Inc", "productName": "Premium Widget"},
    "scheduled": "2025-05-20T15:30:00Z",
    "callerId": "+15559876543"
}))]
pub struct CreateCall {
    /// E.164 number to call; defaults to the contact's phone when `contactId` is given.
    pub phone: Option<String>,
    pub contact_id: Option<Id>,
    /// Required: the script of the call.
    pub template_id: Option<Id>,
    /// Values for the template's variables (strings; numbers and booleans are turned
    /// into strings). Variables the contact provides (contactName, firstName,
    /// contactPhone, contactEmail, company, its customFields) may be left out.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Map<String, Value>>,
    /// When to place the call; in the future the call is `scheduled`, otherwise `queued`.
    pub scheduled: Option<Timestamp>,
    /// E.164 number shown to the callee.
    pub caller_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CancelledCall {
    pub id: Id,
    #[schema(example = "cancelled")]
    pub status: CallStatus,
    #[schema(example = "Call successfully cancelled")]
    pub message: String,
}

fn parse_phone(field: &str, raw: &str) -> ApiResult<Phone> {
    Phone::parse(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// The given variables as strings.
pub(super) fn given_variables(raw: Map<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    if raw.len() > MAX_VARIABLES {
        return Err(ApiError::invalid("variables", format!("at most {MAX_VARIABLES} variables")));
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let field = format!("variables.{name}");
        if !is_variable_name(&name) {
            return Err(ApiError::invalid(
                field,
                "is not a variable name (letters, digits and '_', not starting with a digit)",
            ));
        }
        let Some(text) = scalar_text(&value) else {
            return Err(ApiError::invalid(field, "must be a string, a number or a boolean"));
        };
        if text.chars().count() > MAX_VARIABLE_VALUE {
            return Err(ApiError::invalid(field, format!("must be at most {MAX_VARIABLE_VALUE} characters")));
        }
        out.insert(name, text);
    }
    Ok(out)
}

/// Every variable the template lists must have a value.
pub(super) fn require_template_variables(
    template_variables: &[String],
    variables: &BTreeMap<String, String>,
) -> ApiResult<()> {
    let missing: Vec<&String> = template_variables.iter().filter(|v| !variables.contains_key(*v)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(ApiError::invalid_with(
        "variables",
        format!("missing values for the template's variables: {names}"),
        json!({"missing": missing}),
    ))
}

#[utoipa::path(post, path = "/calls", tag = "calls", request_body = CreateCall,
    responses((status = 201, description = "Call created: `scheduled` or `queued`", body = Call), ErrorResponses),
    security(("bearer" = [])))]
async fn create_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateCall>,
) -> ApiResult<(StatusCode, Json<Call>)> {
    let template_id = body.template_id.ok_or_else(|| ApiError::invalid("templateId", "is required"))?;
    let phone_required = || ApiError::invalid("phone", "is required unless contactId is given");
    if body.phone.is_none() && body.contact_id.is_none() {
        return Err(phone_required());
    }
    let phone = body.phone.as_deref().map(|p| parse_phone("phone", p)).transpose()?;
    let caller_id = body.caller_id.as_deref().map(|p| parse_phone("callerId", p)).transpose()?;
    let mut variables = given_variables(body.variables.unwrap_or_default())?;

    let template = templates::load_script(&state.db, &who.account_id, &template_id)
        .await?
        .ok_or_else(|| ApiError::referenced_not_found("Template", "templateId"))?;
    let contact = match &body.contact_id {
        Some(id) => Some(
            contacts::get(&state.db, &who.account_id, id)
                .await?
                .ok_or_else(|| ApiError::referenced_not_found("Contact", "contactId"))?,
        ),
        None => None,
    };
    if let Some(c) = &contact
        && c.do_not_call
    {
        return Err(ApiError::Conflict {
            message: "The contact is marked do-not-call".into(),
            details: json!({"field": "contactId", "reason": "contact is marked do-not-call"}),
        });
    }
    let phone = match (phone, &contact) {
        (Some(p), _) => p,
        (None, Some(c)) => Phone::from_trusted(c.phone.clone(), c.phone_valid),
        (None, None) => return Err(phone_required()),
    };

    // The call keeps every value it will use: what was given, plus what the contact
    // supplies for the template's variables and placeholders.
    if let Some(c) = &contact {
        template.fill_from_contact(c, &mut variables);
    }
    require_template_variables(&template.variables, &variables)?;
    if let Some(caller_id) = &caller_id {
        super::carriers::check_caller_id(&state, &who.account_id, Some(phone.as_str()), caller_id, "callerId").await?;
    }

    let status = match body.scheduled {
        Some(at) if at > Timestamp::now() => CallStatus::Scheduled,
        _ => CallStatus::Queued,
    };
    let new = NewCall {
        status,
        direction: CallDirection::Outbound,
        phone,
        contact_id: body.contact_id,
        template_id: Some(template.id),
        campaign_id: None,
        variables,
        scheduled_at: body.scheduled,
        caller_id,
    };
    super::quota::check(&state, &who.account_id, crate::store::quotas::Held::QueuedCalls).await?;
    let call = calls::create(&state.db, &who.account_id, new).await?;
    // A call due now need not wait for the dispatcher's next poll.
    state.calls.wake.notify_one();
    Ok((StatusCode::CREATED, Json(call)))
}

#[utoipa::path(get, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = Call), ErrorResponses),
    security(("bearer" = [])))]
async fn get_call(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<Call>> {
    let call = calls::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Call"))?;
    Ok(Json(call))
}

#[utoipa::path(get, path = "/calls", tag = "calls",
    params(
        ("status" = Option<String>, Query,
            description = "Only calls in this status: scheduled, queued, ringing, in-progress, completed, failed, cancelled"),
        ("contactId" = Option<String>, Query, description = "Only calls to this contact"),
        ("campaignId" = Option<String>, Query, description = "Only calls placed by this campaign"),
        ("startDate" = Option<String>, Query,
            description = "Calls started, scheduled or created at or after this date (YYYY-MM-DD) or date-time (RFC 3339)"),
        ("endDate" = Option<String>, Query,
            description = "Calls started, scheduled or created at or before this date (the whole day) or date-time"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, description = "Calls, newest first", body = Paginated<Call>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_calls(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<Call>>> {
    let page = q.page()?;
    let (start, end) = q.date_range()?;
    let filter = ListFilter {
        status: q.one_of("status", CallStatus::parse, &CallStatus::expected())?,
        contact_id: q.id("contactId")?,
        campaign_id: q.id("campaignId")?,
        start,
        end,
    };
    let result = calls::list(&state.db, &who.account_id, &filter, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

#[utoipa::path(post, path = "/calls/{id}/cancel", tag = "calls",
    description = "Cancels a call that has not ended. A `scheduled` or `queued` call is never placed. A `ringing` \
call is hung up at the carrier before it is answered (`endedAt` set, no outcome). An `in-progress` call is hung up \
within a few seconds: the caller hears the line stop, and the call keeps its outcome, notes, duration, transcript \
and recording, with `status: cancelled` and a `call.completed` webhook whose data carries that status. A call that \
has already ended (`completed`, `failed`, `cancelled`) gets 409 `conflict` with `details.status`.",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, description = "Call cancelled", body = CancelledCall),
        ErrorResponses
    ),
    security(("bearer" = [])))]
async fn cancel_call(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<CancelledCall>> {
    match calls::cancel(&state.db, &who.account_id, &id, state.clock.now()).await? {
        CancelOutcome::Cancelled { was } => {
            crate::session::hang_up(&state, &id, was).await;
            Ok(Json(CancelledCall { id, status: CallStatus::Cancelled, message: "Call successfully cancelled".into() }))
        }
        CancelOutcome::NotFound => Err(ApiError::not_found("Call")),
        CancelOutcome::NotCancellable(status) => Err(ApiError::Conflict {
            message: format!("Call cannot be cancelled: it has already ended ({status})"),
            details: json!({"status": status}),
        }),
    }
}
