//! `/v1/analytics`: call statistics over time and campaign performance.
//!
//! A call is counted when its `effective_at` (when it started, else when it is
//! scheduled, else when it was created) lies in `startDate`..`endDate`; a bare date
//! bound covers that whole UTC day. Periods are UTC days, ISO weeks (Monday) or months.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{Auth, QueryParams};
use crate::app::AppState;
use crate::store::analytics::{self, CallFilter, CallStatistics, CampaignPerformanceReport, GroupBy};

/// At most this many ids in `campaignIds`.
const MAX_CAMPAIGN_IDS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(call_statistics)).routes(routes!(campaign_performance))
}

#[utoipa::path(get, path = "/analytics/calls", tag = "analytics",
    description = "Statistics of the account's calls whose effective time (started, else scheduled, else created) \
is in the range. A completed call has status `completed`; a successful call is a completed call with outcome \
`successful`. Rates are rounded half up to one decimal; durations to whole seconds.",
    params(
        ("startDate" = Option<String>, Query, description = "Range start: RFC 3339 date-time, or a date meaning 00:00:00 UTC that day"),
        ("endDate" = Option<String>, Query, description = "Range end (inclusive): RFC 3339 date-time, or a date meaning the whole of that UTC day"),
        ("campaignId" = Option<String>, Query, description = "Only calls of this campaign"),
        ("groupBy" = Option<String>, Query, description = "Period of `callsByTime`: `day` (default), `week` (ISO, from Monday) or `month`"),
    ),
    responses((status = 200, body = CallStatistics), ErrorResponses),
    security(("bearer" = [])))]
async fn call_statistics(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<CallStatistics>> {
    let (start, end) = q.date_range()?;
    let campaign_id = q.id("campaignId")?;
    let group_by = q.one_of("groupBy", GroupBy::parse, GroupBy::EXPECTED)?.unwrap_or(GroupBy::Day);
    let filter = CallFilter { start, end, campaign_id };
    let stats = analytics::call_stats(&state.db, &who.account_id, &filter, group_by).await?;
    Ok(Json(stats))
}

#[utoipa::path(get, path = "/analytics/campaigns", tag = "analytics",
    description = "Performance of the account's campaigns, counting each campaign's calls whose effective time is in \
the range. Ids in `campaignIds` that are not campaigns of the account are left out.",
    params(
        ("startDate" = Option<String>, Query, description = "Range start: RFC 3339 date-time, or a date meaning 00:00:00 UTC that day"),
        ("endDate" = Option<String>, Query, description = "Range end (inclusive): RFC 3339 date-time, or a date meaning the whole of that UTC day"),
        ("campaignIds" = Option<String>, Query, description = "Comma-separated campaign ids (at most 100); default all campaigns"),
    ),
    responses((status = 200, body = CampaignPerformanceReport), ErrorResponses),
    security(("bearer" = [])))]
async fn campaign_performance(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<CampaignPerformanceReport>> {
    let (start, end) = q.date_range()?;
    let ids = q.ids("campaignIds")?;
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_CAMPAIGN_IDS) {
        return Err(ApiError::invalid("campaignIds", format!("at most {MAX_CAMPAIGN_IDS} ids")));
    }
    let report = analytics::campaign_performance(&state.db, &who.account_id, ids.as_deref(), start, end).await?;
    Ok(Json(report))
}
