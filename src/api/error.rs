//! The one place where failures become HTTP responses in the spec's error shape:
//! `{"error": {"code", "message", "details"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("The parameter '{field}' is invalid")]
    InvalidParameter { field: String, reason: String },
    /// An invalid parameter with more facts for the client than field and reason
    /// (e.g. the names of missing call variables), merged into `details`.
    #[error("The parameter '{field}' is invalid")]
    InvalidParameterWith { field: String, reason: String, extra: Value },
    #[error("{message}")]
    InvalidRequest { message: String, details: Value },
    #[error("{resource} not found")]
    NotFound { resource: &'static str, field: Option<String> },
    /// Some ids of a list in the request body (e.g. `contacts`) do not exist.
    #[error("{resource} not found: {}", missing.join(", "))]
    MissingReferences { resource: &'static str, field: String, missing: Vec<String> },
    #[error("No route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("Method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{message}")]
    Conflict { message: String, details: Value },
    #[error("Rate limit of {limit} requests per minute exceeded")]
    RateLimited { limit: u32, retry_after_secs: u64 },
    #[error("Request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A body within the byte limit that holds more of something than one request may
    /// (`what`: "rows", "columns").
    #[error("Request body has more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("Content-Type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("Idempotency-Key '{key}' was already used with a different request")]
    IdempotencyKeyReused { key: String },
    #[error("A request with Idempotency-Key '{key}' is still being processed")]
    IdempotencyKeyInFlight { key: String },
    #[error("Your account may hold at most {limit} {what}")]
    QuotaExceeded { what: &'static str, limit: i64 },
    #[error("The request took longer than {secs} s")]
    RequestTimeout { secs: u64 },
    /// The carrier's API (Twilio) could not be reached, or refused the account's credentials.
    #[error("The carrier could not be asked: {message}")]
    CarrierUnavailable { message: String },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The error body, as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable, machine-readable code, e.g. `invalid_parameter`, `not_found`, `unauthorized`.
    #[schema(example = "invalid_parameter")]
    pub code: String,
    #[schema(example = "The parameter 'phone' is invalid")]
    pub message: String,
    #[schema(value_type = Object, example = json!({"field": "phone", "reason": "must be a valid phone number"}))]
    pub details: Value,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidParameter { field: field.into(), reason: reason.into() }
    }

    /// `extra` must be a JSON object; its entries join `field` and `reason` in `details`.
    pub fn invalid_with(field: impl Into<String>, reason: impl Into<String>, extra: Value) -> ApiError {
        ApiError::InvalidParameterWith { field: field.into(), reason: reason.into(), extra }
    }

    pub fn not_found(resource: &'static str) -> ApiError {
        ApiError::NotFound { resource, field: None }
    }

    /// A resource referenced from a request body (e.g. `templateId`) does not exist.
    pub fn referenced_not_found(resource: &'static str, field: impl Into<String>) -> ApiError {
        ApiError::NotFound { resource, field: Some(field.into()) }
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::Conflict { message: message.into(), details: json!({}) }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. }
            | ApiError::InvalidParameterWith { .. }
            | ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } | ApiError::MissingReferences { .. } | ApiError::RouteNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Conflict { .. } | ApiError::IdempotencyKeyInFlight { .. } | ApiError::QuotaExceeded { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } | ApiError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::CarrierUnavailable { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter { .. } | ApiError::InvalidParameterWith { .. } => "invalid_parameter",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::NotFound { .. } | ApiError::MissingReferences { .. } | ApiError::RouteNotFound { .. } => {
                "not_found"
            }
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Conflict { .. } => "conflict",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PayloadTooLarge { .. } | ApiError::TooMany { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            ApiError::IdempotencyKeyInFlight { .. } => "idempotency_key_in_use",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::CarrierUnavailable { .. } => "carrier_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::InvalidParameter { field, reason } => json!({"field": field, "reason": reason}),
            ApiError::InvalidParameterWith { field, reason, extra } => {
                let mut details = json!({"field": field, "reason": reason});
                if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
                    d.extend(e.clone());
                }
                details
            }
            ApiError::InvalidRequest { details, .. } | ApiError::Conflict { details, .. } => details.clone(),
            ApiError::NotFound { field: Some(field), .. } => json!({"field": field}),
            ApiError::MissingReferences { field, missing, .. } => json!({"field": field, "missing": missing}),
            ApiError::RateLimited { limit, retry_after_secs } => {
                json!({"limit": limit, "retryAfter": retry_after_secs})
            }
            ApiError::PayloadTooLarge { limit } => json!({"limit": limit}),
            ApiError::TooMany { what, limit } => json!({"limit": limit, "of": what}),
            ApiError::QuotaExceeded { what, limit } => json!({"limit": limit, "of": what}),
            _ => json!({}),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let body = ErrorBody {
            error: ErrorObject { code: self.code().to_owned(), message: self.to_string(), details: self.details() },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The response to a request whose handler panicked: the spec's 500, not a dropped connection.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// The error responses every `/v1` operation may return, for the OpenAPI document.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum ErrorResponses {
    #[response(status = 400, description = "Invalid parameters (code `invalid_parameter` or `invalid_request`)")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "Missing, malformed or revoked API key (code `unauthorized`)")]
    Unauthorized(ErrorBody),
    #[response(status = 404, description = "Resource not found (code `not_found`)")]
    NotFound(ErrorBody),
    #[response(
        status = 409,
        description = "Conflict with the resource's state (code `conflict`), or an account quota reached (code `quota_exceeded`; `details.of` and `details.limit` say which)"
    )]
    Conflict(ErrorBody),
    #[response(status = 413, description = "Request body too large (code `payload_too_large`)")]
    PayloadTooLarge(ErrorBody),
    #[response(status = 415, description = "Wrong Content-Type (code `unsupported_media_type`)")]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "Idempotency-Key reused with another request (code `idempotency_key_reused`)"
    )]
    IdempotencyKeyReused(ErrorBody),
    #[response(status = 408, description = "The request took longer than 60 s (code `request_timeout`)")]
    RequestTimeout(ErrorBody),
    #[response(status = 429, description = "Rate limit exceeded (code `rate_limited`); see `Retry-After`")]
    RateLimited(ErrorBody),
    #[response(status = 500, description = "Something went wrong on our end")]
    Internal(ErrorBody),
    #[response(
        status = 502,
        description = "The account's carrier (Twilio) could not be reached or refused its credentials (code `carrier_unavailable`)"
    )]
    CarrierUnavailable(ErrorBody),
}
