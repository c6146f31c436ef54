//! `/v1/campaigns`: create (resolving the audience), get, list, and status changes
//! along the legal transitions only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, QueryParams};
use super::pagination::Paginated;
use super::validate;
use crate::app::AppState;
use crate::domain::schedule::Schedule;
use crate::domain::status::CampaignStatus;
use crate::domain::{Id, Phone};
use crate::store::campaigns::{self, CallSettings, Campaign, MissingReference, NewCampaign, RetrySettings, Transition};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign))
        .routes(routes!(update_campaign_status))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCampaign {
    #[schema(example = "Summer Promotion")]
    pub name: String,
    #[schema(example = "Outreach for summer sale")]
    pub description: Option<String>,
    /// A template of the account.
    pub template_id: Id,
    /// Contact ids of the account to call.
    #[serde(default)]
    #[schema(example = json!(["60a2e7f3b9c1a83e94d8f2a1", "60a2e7f3b9c1a83e94d8f2a2"]))]
    pub contacts: Vec<Id>,
    /// Contact lists of the account whose members (at creation time) are called too.
    #[serde(default)]
    #[schema(example = json!(["60a2e7f3b9c1a83e94d8f2d1"]))]
    pub contact_list_ids: Vec<Id>,
    /// When to call. Absent: as soon as the campaign is activated, at any hour.
    pub schedule: Option<Schedule>,
    /// Absent fields take their defaults.
    pub call_settings: Option<CallSettingsInput>,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallSettingsInput {
    /// 1-100, default 10.
    #[schema(example = 10)]
    pub max_concurrent_calls: Option<i64>,
    /// E.164 number to show to the callee.
    #[schema(example = "+15559876543")]
    pub caller_id: Option<String>,
    pub retry_settings: Option<RetrySettingsInput>,
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySettingsInput {
    /// 1-10, default 3.
    #[schema(example = 3)]
    pub max_attempts: Option<i64>,
    /// Minutes between attempts, 1-10080 (a week), default 60.
    #[schema(example = 60)]
    pub retry_interval: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCampaignStatus {
    // A string parsed by hand: serde_json reports a non-string where an enum is
    // expected as a syntax error, which would not name the field.
    #[schema(value_type = CampaignStatus, example = "paused")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStatusChanged {
    pub id: Id,
    #[schema(example = "paused")]
    pub status: CampaignStatus,
    #[schema(example = "Campaign successfully paused")]
    pub message: String,
}

fn in_range(field: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> ApiResult<i64> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::invalid(field, format!("must be between {min} and {max}")))
    }
}

fn call_settings(input: Option<CallSettingsInput>) -> ApiResult<CallSettings> {
    let input = input.unwrap_or_default();
    let retry = input.retry_settings.unwrap_or_default();
    let caller_id = input
        .caller_id
        .filter(|c| !c.trim().is_empty())
        .map(|c| Phone::parse(&c).map_err(|e| ApiError::invalid("callSettings.callerId", e.to_string())))
        .transpose()?;
    Ok(CallSettings {
        max_concurrent_calls: in_range("callSettings.maxConcurrentCalls", input.max_concurrent_calls, 10, 1, 100)?,
        caller_id: caller_id.map(|p| p.as_str().to_owned()),
        retry_settings: RetrySettings {
            max_attempts: in_range("callSettings.retrySettings.maxAttempts", retry.max_attempts, 3, 1, 10)?,
            retry_interval: in_range("callSettings.retrySettings.retryInterval", retry.retry_interval, 60, 1, 10080)?,
        },
    })
}

#[utoipa::path(post, path = "/campaigns", tag = "campaigns", request_body = CreateCampaign,
    description = "Creates a campaign in status `scheduled`. Its audience is resolved now: the `contacts` plus the \
current members of every list in `contactListIds`, each contact once (`totalContacts`). A `templateId`, contact or \
list that is not in the account is a 404 naming the field (and the `missing` ids).

**Dialing.** A campaign with a `schedule` becomes `active` by itself at `startDate` (webhook \
`campaign.started`); one without a schedule waits for `POST /campaigns/{id}/status` with `active`. An active \
campaign calls its audience only on `daysOfWeek` (1 = Monday ... 7 = Sunday) between `callHours.start` and \
`callHours.end` in `timeZone`, with at most `callSettings.maxConcurrentCalls` of its calls queued or under way, \
each call with `campaignId` and `contactId` set and the contact's fields as template variables. Contacts marked \
`doNotCall` are skipped. A contact who was reached (the call `completed`, whatever its outcome) or whose call \
was cancelled is done, except that a callee who asked to be called back at a time (the call's `callbackAt`) is \
called then; a call that did not connect (`failed` with outcome `busy`, `noAnswer` or `failed`) is \
tried again `retrySettings.retryInterval` minutes after it ended; both up to `retrySettings.maxAttempts` attempts in \
all. The campaign becomes `completed` (webhook `campaign.completed`) when every contact is done and no call is \
under way, or when `endDate` has passed and its last calls have ended (a campaign created with no contacts is \
not completed by itself). A `paused` campaign starts no new calls; the ones under way finish.",
    responses((status = 201, description = "Campaign created", body = Campaign), ErrorResponses),
    security(("bearer" = [])))]
async fn create_campaign(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let name = validate::required_text("name", &body.name, 200)?;
    let description = body.description.map(|d| validate::optional_text("description", &d, 2000)).transpose()?.flatten();
    if let Some(schedule) = &body.schedule {
        schedule.validate().map_err(|e| ApiError::invalid(e.field, e.reason))?;
    }
    let call_settings = call_settings(body.call_settings)?;
    if let Some(caller_id) = &call_settings.caller_id {
        let caller_id = Phone::from_trusted(caller_id.clone(), true);
        super::carriers::check_caller_id(&state, &who.account_id, None, &caller_id, "callSettings.callerId").await?;
    }
    let new = NewCampaign {
        name,
        description,
        template_id: body.template_id,
        contacts: body.contacts,
        contact_list_ids: body.contact_list_ids,
        schedule: body.schedule,
        call_settings,
    };
    super::quota::check(&state, &who.account_id, crate::store::quotas::Held::OpenCampaigns).await?;
    match campaigns::create(&state.db, &who.account_id, new).await? {
        Ok(campaign) => {
            // A schedule that has already started dials without waiting for the next pass.
            state.dialer.wake.notify_one();
            Ok((StatusCode::CREATED, Json(campaign)))
        }
        Err(MissingReference::Template) => Err(ApiError::referenced_not_found("Template", "templateId")),
        Err(MissingReference::Contacts(ids)) => Err(ApiError::MissingReferences {
            resource: "Contact",
            field: "contacts".into(),
            missing: ids.into_iter().map(Id::into_string).collect(),
        }),
        Err(MissingReference::ContactLists(ids)) => Err(ApiError::MissingReferences {
            resource: "Contact list",
            field: "contactListIds".into(),
            missing: ids.into_iter().map(Id::into_string).collect(),
        }),
    }
}

#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = Campaign), ErrorResponses),
    security(("bearer" = [])))]
async fn get_campaign(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<Campaign>> {
    let campaign = campaigns::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Campaign"))?;
    Ok(Json(campaign))
}

#[utoipa::path(get, path = "/campaigns", tag = "campaigns",
    description = "Campaigns, newest first.",
    params(
        ("status" = Option<CampaignStatus>, Query, description = "Only campaigns in this status"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<Campaign>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_campaigns(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<Campaign>>> {
    let status = q.one_of("status", CampaignStatus::parse, &CampaignStatus::expected())?;
    let page = q.page()?;
    let result = campaigns::list(&state.db, &who.account_id, status, page).await?;
    Ok(Json(Paginated::new(result, page)))
}

#[utoipa::path(post, path = "/campaigns/{id}/status", tag = "campaigns", request_body = UpdateCampaignStatus,
    description = "Changes the status along the legal transitions only: scheduled -> active, paused or cancelled; \
active -> paused, completed or cancelled; paused -> active or cancelled. Any other change is a 409 `conflict` with \
`details.from` and `details.to`. Cancelling also cancels the campaign's calls that are still `scheduled` or `queued`.",
    params(("id" = String, Path, description = "Campaign id")),
    responses((status = 200, body = CampaignStatusChanged), ErrorResponses),
    security(("bearer" = [])))]
async fn update_campaign_status(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateCampaignStatus>,
) -> ApiResult<Json<CampaignStatusChanged>> {
    let to = CampaignStatus::parse(body.status.trim())
        .ok_or_else(|| ApiError::invalid("status", format!("must be one of: {}", CampaignStatus::expected())))?;
    match campaigns::transition(&state.db, &who.account_id, &id, to).await? {
        Transition::Done => {
            // The transition committed a webhook event; deliver it without waiting for the next poll.
            state.relay.wake();
            if to == CampaignStatus::Active {
                state.dialer.wake.notify_one();
            }
            Ok(Json(CampaignStatusChanged { id, status: to, message: format!("Campaign successfully {}", to.verb()) }))
        }
        Transition::NotFound => Err(ApiError::not_found("Campaign")),
        Transition::Illegal { from } => {
            let allowed: Vec<&str> =
                CampaignStatus::ALL.iter().filter(|s| from.can_become(**s)).map(|s| s.as_str()).collect();
            Err(ApiError::Conflict {
                message: format!("A {from} campaign cannot become {to}"),
                details: json!({"from": from, "to": to, "allowed": allowed}),
            })
        }
    }
}
