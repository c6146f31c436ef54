//! `/v1/api-keys`: the account's keys. The secret is returned once, at creation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{ApiJson, Auth, PathId};
use super::validate;
use crate::app::AppState;
use crate::domain::{Id, Timestamp};
use crate::store::accounts::{self, ApiKeyRecord};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_key, list_keys)).routes(routes!(revoke_key))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Id,
    #[schema(example = "CRM integration")]
    pub name: Option<String>,
    /// The public start of the key, safe to show.
    #[schema(example = "cc_live_60a2e7f3b9c1a83e94d8f2c3")]
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl From<ApiKeyRecord> for ApiKey {
    fn from(r: ApiKeyRecord) -> ApiKey {
        ApiKey {
            prefix: r.prefix(),
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret key. It is shown only in this response; store it now.
    pub secret: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(example = "CRM integration")]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
}

#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), ErrorResponses), security(("bearer" = [])))]
async fn create_key(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let name = body.name.map(|n| validate::optional_text("name", &n, 100)).transpose()?.flatten();
    super::quota::check(&state, &who.account_id, crate::store::quotas::Held::ApiKeys).await?;
    let (record, secret) = accounts::create_key(&state.db, &who.account_id, name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key: record.into(), secret })))
}

#[utoipa::path(get, path = "/api-keys", tag = "api-keys",
    responses((status = 200, body = ApiKeyList), ErrorResponses), security(("bearer" = [])))]
async fn list_keys(State(state): State<AppState>, Auth(who): Auth) -> ApiResult<Json<ApiKeyList>> {
    let keys = accounts::list_keys(&state.db, &who.account_id).await?;
    Ok(Json(ApiKeyList { data: keys.into_iter().map(ApiKey::from).collect() }))
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, now revoked; it is rejected at once", body = ApiKey), ErrorResponses),
    security(("bearer" = [])))]
async fn revoke_key(State(state): State<AppState>, Auth(who): Auth, PathId(id): PathId) -> ApiResult<Json<ApiKey>> {
    let record =
        accounts::revoke_key(&state.db, &id, Some(&who.account_id)).await?.ok_or(ApiError::not_found("API key"))?;
    Ok(Json(record.into()))
}
