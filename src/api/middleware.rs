//! Cross-cutting request handling for `/v1`: API-key auth, the per-key rate limit,
//! `Idempotency-Key` replays, and request metrics for every route.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::JSON_BODY_LIMIT;
use crate::app::AppState;
use crate::domain::{Id, Timestamp};
use crate::store::accounts::{self, Principal};
use crate::store::idempotency::{self, Claim};

/// GCRA limiter keyed by API key id; each key has its own bucket, so one key's
/// flood never delays another.
pub struct ApiRateLimiter {
    limiter: RateLimiter<Id, DefaultKeyedStateStore<Id>, DefaultClock, StateInformationMiddleware>,
    per_minute: u32,
    clock: DefaultClock,
}

impl ApiRateLimiter {
    pub fn new(per_minute: u32) -> ApiRateLimiter {
        let per_minute = per_minute.max(1);
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(n).allow_burst(n);
        ApiRateLimiter {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_minute,
            clock: DefaultClock::default(),
        }
    }

    /// Drops the state of keys that are back to a full bucket (bounds memory).
    pub fn forget_idle_keys(&self) {
        self.limiter.retain_recent();
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(key) = bearer_token(req.headers()) else {
        return ApiError::Unauthorized("Missing or malformed Authorization header; expected 'Bearer YOUR_API_KEY'")
            .into_response();
    };
    let principal = match accounts::authenticate(&state.db, key).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::Unauthorized("Invalid or revoked API key").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Record use at most once a minute per key, off the request path.
    let stale = principal.last_used_at.is_none_or(|t| Timestamp::now().seconds_since(t) >= 60);
    if stale {
        let db = state.db.clone();
        let key_id = principal.key_id.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts::touch_key(&db, &key_id).await {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(principal) = req.extensions().get::<Principal>() else { return next.run(req).await };
    let limiter: &Arc<ApiRateLimiter> = &state.rate_limiter;
    let limit = limiter.per_minute;
    let seconds_per_token = 60.0 / f64::from(limit);
    match limiter.limiter.check_key(&principal.key_id) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let mut response = next.run(req).await;
            let reset = ((f64::from(limit - remaining.min(limit))) * seconds_per_token).ceil() as u64;
            set_rate_headers(response.headers_mut(), limit, remaining, reset);
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(limiter.clock.now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let retry_after = retry_after.max(1);
            let mut response = ApiError::RateLimited { limit, retry_after_secs: retry_after }.into_response();
            set_rate_headers(response.headers_mut(), limit, 0, (60.0_f64).ceil() as u64);
            response
        }
    }
}

fn set_rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_secs: u64) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset_secs));
}

/// Stripe's `Idempotency-Key` semantics for JSON POSTs: the first successful (2xx)
/// response is stored for 24 h and replayed for the same key and the same request;
/// the same key with a different request is a 422; a concurrent duplicate is a 409.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get("idempotency-key") else { return next.run(req).await };
    let key = match raw_key.to_str().map(str::trim) {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_owned(),
        _ => return ApiError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters").into_response(),
    };
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.to_ascii_lowercase().contains("json"));
    // Streamed uploads (CSV imports) are not buffered for hashing; they are not replayed.
    if !is_json {
        return next.run(req).await;
    }
    let Some(principal) = req.extensions().get::<Principal>().cloned() else { return next.run(req).await };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, JSON_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::PayloadTooLarge { limit: JSON_BODY_LIMIT }.into_response(),
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("").as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    match idempotency::claim(&state.db, &principal.account_id, &key, &request_hash).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Claim::Mismatch) => return ApiError::IdempotencyKeyReused { key }.into_response(),
        Ok(Claim::InFlight) => return ApiError::IdempotencyKeyInFlight { key }.into_response(),
        Ok(Claim::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return response;
        }
        Ok(Claim::Claimed) => {}
    }

    // The request runs to its end in its own task: a client that hangs up mid-request would
    // otherwise drop it between its writes and the key's result, leaving the key "in flight"
    // for 24 h (every retry a 409) or the work half-recorded. Now its retry gets the replay.
    let request = Request::from_parts(parts, Body::from(bytes));
    let (db, account_id, claimed) = (state.db.clone(), principal.account_id.clone(), key.clone());
    let work = tokio::spawn(async move { run_and_record(&db, &account_id, &claimed, next, request).await });
    match work.await {
        Ok(response) => response,
        Err(e) => {
            // The handler panicked: the key is free for a retry.
            let _ = idempotency::release(&state.db, &principal.account_id, &key).await;
            ApiError::Internal(anyhow::anyhow!("request task failed: {e}")).into_response()
        }
    }
}

/// Runs a claimed request and stores its result under the key (2xx), or frees the key.
async fn run_and_record(db: &crate::store::Db, account_id: &Id, key: &str, next: Next, request: Request) -> Response {
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let _ = idempotency::release(db, account_id, key).await;
            return ApiError::Internal(anyhow::anyhow!("reading response body: {e}")).into_response();
        }
    };
    let outcome = if parts.status.is_success() {
        idempotency::complete(db, account_id, key, parts.status.as_u16(), &String::from_utf8_lossy(&bytes)).await
    } else {
        idempotency::release(db, account_id, key).await
    };
    if let Err(e) = outcome {
        tracing::error!(error = %e, "could not record idempotency result");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Counts requests and records latency by method, matched route and status.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    response
}

/// Periodic housekeeping: expired idempotency keys, idle rate-limit buckets.
pub async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        state.rate_limiter.forget_idle_keys();
        match idempotency::purge_expired(&state.db).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "purged expired idempotency keys"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
    }
}
