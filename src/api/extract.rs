//! Request extractors that turn every client mistake into a spec-shaped 4xx:
//! JSON bodies (content type, size, syntax, types, unknown fields), query strings
//! and path ids.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::Id;
use crate::domain::time::{DayBound, Timestamp};
use crate::store::PageRequest;
use crate::store::accounts::Principal;

/// The body size limit for JSON requests.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, parsed strictly.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType { expected: "application/json" });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: JSON_BODY_LIMIT }
    } else {
        ApiError::InvalidRequest {
            message: format!("Could not read the request body: {rejection}"),
            details: serde_json::json!({}),
        }
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidRequest {
            message: "A JSON request body is required".into(),
            details: serde_json::json!({"reason": "empty body"}),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::InvalidRequest {
                message: "The request body is not valid JSON".into(),
                details: serde_json::json!({"reason": inner.to_string()}),
            };
        }
        let path = e.path().to_string();
        let message = inner.to_string();
        // For an unknown field serde reports the enclosing object; name the field itself.
        // serde_path_to_error's path already ends with an unknown field's name.
        let field = if path == "." { "body".to_owned() } else { path };
        let reason = message.split(" at line ").next().unwrap_or(&message).to_owned();
        ApiError::InvalidParameter { field, reason }
    })
}

/// The query string as name/value pairs, with typed accessors that name the
/// offending parameter. Unknown parameters are ignored.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryParams(form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl QueryParams {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> QueryParams {
        QueryParams(pairs)
    }

    /// The last value given for `name`; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }

    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let page = self.int_in("page", 1, 1, i64::from(i32::MAX))?;
        let limit = self.int_in("limit", 20, 1, 100)?;
        Ok(PageRequest { page, limit })
    }

    fn int_in(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else { return Ok(default) };
        let value: i64 = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(name, format!("must be an integer between {min} and {max}")))?;
        if value < min || value > max {
            return Err(ApiError::invalid(name, format!("must be an integer between {min} and {max}")));
        }
        Ok(value)
    }

    pub fn id(&self, name: &str) -> Result<Option<Id>, ApiError> {
        self.get(name).map(|v| Id::parse(v.trim()).map_err(|e| ApiError::invalid(name, e.to_string()))).transpose()
    }

    /// A comma-separated list of ids.
    pub fn ids(&self, name: &str) -> Result<Option<Vec<Id>>, ApiError> {
        let Some(raw) = self.get(name) else { return Ok(None) };
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Id::parse(s).map_err(|_| ApiError::invalid(name, format!("'{s}' is not a valid id"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub fn timestamp(&self, name: &str, bound: DayBound) -> Result<Option<Timestamp>, ApiError> {
        self.get(name)
            .map(|v| Timestamp::parse_bound(v, bound).map_err(|e| ApiError::invalid(name, e.to_string())))
            .transpose()
    }

    /// `startDate`/`endDate` as a checked range.
    pub fn date_range(&self) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
        let start = self.timestamp("startDate", DayBound::Start)?;
        let end = self.timestamp("endDate", DayBound::End)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(ApiError::invalid("endDate", "must not be before startDate"));
        }
        Ok((start, end))
    }

    pub fn one_of<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| parse(v.trim()).ok_or_else(|| ApiError::invalid(name, format!("must be one of: {expected}"))))
            .transpose()
    }
}

/// A resource id from the path; a malformed id is a 400 naming the parameter.
pub struct PathId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw): axum::extract::Path<String> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::invalid("id", "missing id"))?;
        Id::parse(&raw).map(PathId).map_err(|e| ApiError::invalid("id", e.to_string()))
    }
}

/// Two ids from the path, e.g. `/contact-lists/{id}/contacts/{contactId}`.
pub struct PathIds(pub Id, pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path((a, b)): axum::extract::Path<(String, String)> =
            axum::extract::Path::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::invalid("id", "missing id"))?;
        let a = Id::parse(&a).map_err(|e| ApiError::invalid("id", e.to_string()))?;
        let b = Id::parse(&b).map_err(|e| ApiError::invalid("id", e.to_string()))?;
        Ok(PathIds(a, b))
    }
}

/// The authenticated caller, put in the request by the auth middleware.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Principal>().cloned().map(Auth).ok_or(ApiError::Unauthorized("Missing API key"))
    }
}
