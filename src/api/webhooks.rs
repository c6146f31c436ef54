//! `/v1/webhooks`: endpoint management ("Settings > Webhooks" in the spec, as an API),
//! secret rotation, test events, the delivery log and manual redelivery.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId, PathIds, QueryParams};
use super::pagination::Paginated;
use super::{double_option, validate};
use crate::app::AppState;
use crate::domain::{Id, Timestamp};
use crate::store::webhooks::{self as store, DeliveryAttempt, EndpointPatch, NewEndpoint, WebhookEndpoint};
use crate::webhooks::events::{self, EventType};
use crate::webhooks::ssrf::{self, UrlRejected};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test_event))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// HTTPS URL of a public receiver (http only for loopback with `--allow-insecure-webhooks`).
    #[schema(example = "https://example.com/hooks/callcenter")]
    pub url: String,
    /// Any of call.started, call.completed, call.failed, call.transcript.available,
    /// call.recording.available, campaign.started, campaign.completed, campaign.paused, or "*".
    #[schema(example = json!(["call.completed", "campaign.started"]))]
    pub events: Vec<String>,
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Re-enabling an endpoint that was disabled for failing clears its failure record.
    pub enabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_...`). Shown only here and on rotation.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub id: Id,
    /// The new secret; deliveries are signed with it from now on.
    pub secret: String,
    /// Until then the previous secret also signs (`webhook-signature` carries both).
    pub previous_secret_expires_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedEvent {
    #[schema(example = "evt_60a2e7f3b9c1a83e94d8f2f1")]
    pub event_id: String,
    #[schema(example = "webhook.test")]
    pub r#type: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetriedDelivery {
    pub delivery_id: Id,
    #[schema(example = "pending")]
    pub status: String,
}

fn validate_events(events: Vec<String>) -> ApiResult<Vec<String>> {
    if events.is_empty() {
        return Err(ApiError::invalid("events", "subscribe to at least one event type, or \"*\""));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let e = e.trim().to_owned();
        if e != "*" && EventType::parse_subscribable(&e).is_none() {
            let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect();
            return Err(ApiError::invalid(
                "events",
                format!("unknown event type '{e}'; expected \"*\" or one of {}", known.join(", ")),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Checks the URL's form and, when its name resolves now, the addresses it resolves to.
/// A name that does not resolve yet is accepted: delivery checks again every time.
async fn validate_url(raw: &str, allow_insecure: bool) -> ApiResult<String> {
    let url = ssrf::check_url(raw, allow_insecure).map_err(|e| ApiError::invalid("url", e.to_string()))?;
    match ssrf::resolve_checked(&url, allow_insecure).await {
        Err(e @ UrlRejected::InternalAddress(_)) => Err(ApiError::invalid("url", e.to_string())),
        _ => Ok(url.to_string()),
    }
}

async fn find(state: &AppState, account: &Id, id: &Id) -> ApiResult<WebhookEndpoint> {
    store::get(&state.db, account, id).await?.ok_or(ApiError::not_found("Webhook endpoint"))
}

#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "Endpoint created; the secret is shown only now", body = CreatedWebhook), ErrorResponses),
    security(("bearer" = [])))]
async fn create_endpoint(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let url = validate_url(&body.url, state.config.allow_insecure_webhooks).await?;
    let events = validate_events(body.events)?;
    let description = body.description.map(|d| validate::optional_text("description", &d, 500)).transpose()?.flatten();
    let new = NewEndpoint { url, description, events, enabled: body.enabled };
    super::quota::check(&state, &who.account_id, crate::store::quotas::Held::WebhookEndpoints).await?;
    let (endpoint, secret) = store::create(&state.db, &who.account_id, new, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { endpoint, secret })))
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    params(
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, body = Paginated<WebhookEndpoint>), ErrorResponses), security(("bearer" = [])))]
async fn list_endpoints(
    State(state): State<AppState>,
    Auth(who): Auth,
    q: QueryParams,
) -> ApiResult<Json<Paginated<WebhookEndpoint>>> {
    let page = q.page()?;
    Ok(Json(Paginated::new(store::list(&state.db, &who.account_id, page).await?, page)))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookEndpoint), ErrorResponses), security(("bearer" = [])))]
async fn get_endpoint(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(find(&state, &who.account_id, &id).await?))
}

#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", request_body = UpdateWebhook,
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, body = WebhookEndpoint), ErrorResponses), security(("bearer" = [])))]
async fn update_endpoint(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<WebhookEndpoint>> {
    find(&state, &who.account_id, &id).await?;
    let url = match body.url {
        Some(u) => Some(validate_url(&u, state.config.allow_insecure_webhooks).await?),
        None => None,
    };
    let patch = EndpointPatch {
        url,
        events: body.events.map(validate_events).transpose()?,
        description: body
            .description
            .map(|d| d.map(|d| validate::optional_text("description", &d, 500)).transpose().map(Option::flatten))
            .transpose()?,
        enabled: body.enabled,
    };
    let endpoint = store::update(&state.db, &who.account_id, &id, patch, state.clock.now()).await?;
    Ok(Json(endpoint.ok_or(ApiError::not_found("Webhook endpoint"))?))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Endpoint and its delivery log deleted"), ErrorResponses), security(("bearer" = [])))]
async fn delete_endpoint(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<StatusCode> {
    if store::delete(&state.db, &who.account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("Webhook endpoint"))
    }
}

#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "New secret; the previous one keeps signing for 24 h", body = RotatedSecret), ErrorResponses),
    security(("bearer" = [])))]
async fn rotate_secret(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<RotatedSecret>> {
    let (secret, expires) = store::rotate_secret(&state.db, &who.account_id, &id, state.clock.now())
        .await?
        .ok_or(ApiError::not_found("Webhook endpoint"))?;
    Ok(Json(RotatedSecret { id, secret, previous_secret_expires_at: expires }))
}

#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, description = "A webhook.test event is queued for this endpoint", body = QueuedEvent), ErrorResponses),
    security(("bearer" = [])))]
async fn send_test_event(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<(StatusCode, Json<QueuedEvent>)> {
    find(&state, &who.account_id, &id).await?;
    let now = state.clock.now();
    let mut tx = state.db.write.begin().await.map_err(crate::store::StoreError::from)?;
    let data = json!({"webhookId": id, "message": "This is a test event from the AI Call Center API"});
    let event_id =
        events::emit_to(&mut tx, &who.account_id, EventType::WebhookTest, data, now, std::slice::from_ref(&id)).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.relay.wake();
    Ok((StatusCode::ACCEPTED, Json(QueuedEvent { event_id, r#type: EventType::WebhookTest.as_str().to_owned() })))
}

#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(
        ("id" = String, Path, description = "Endpoint id"),
        ("page" = Option<i64>, Query, minimum = 1, description = "Page number (default 1)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Results per page (default 20, max 100)"),
    ),
    responses((status = 200, description = "Delivery attempts, newest first", body = Paginated<DeliveryAttempt>), ErrorResponses),
    security(("bearer" = [])))]
async fn list_deliveries(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    q: QueryParams,
) -> ApiResult<Json<Paginated<DeliveryAttempt>>> {
    let page = q.page()?;
    find(&state, &who.account_id, &id).await?;
    Ok(Json(Paginated::new(store::list_attempts(&state.db, &who.account_id, &id, page).await?, page)))
}

#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id"), ("deliveryId" = String, Path, description = "Delivery id")),
    responses((status = 202, description = "The delivery is due again now", body = RetriedDelivery), ErrorResponses),
    security(("bearer" = [])))]
async fn retry_delivery(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathIds(id, delivery_id): PathIds,
) -> ApiResult<(StatusCode, Json<RetriedDelivery>)> {
    find(&state, &who.account_id, &id).await?;
    if !store::retry_delivery(&state.db, &who.account_id, &id, &delivery_id, state.clock.now()).await? {
        return Err(ApiError::not_found("Delivery"));
    }
    state.relay.wake();
    Ok((StatusCode::ACCEPTED, Json(RetriedDelivery { delivery_id, status: "pending".into() })))
}
