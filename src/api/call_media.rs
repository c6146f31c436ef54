//! What a call leaves behind: `GET /v1/calls/{id}/transcript` (JSON turns) and
//! `GET /v1/calls/{id}/recording` (a stereo WAV, caller left and bot right, with HTTP range
//! requests so players can seek).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorResponses};
use super::extract::{Auth, PathId};
use crate::app::AppState;
use crate::domain::Id;
use crate::store::call_sessions::{self, Turn};
use crate::store::calls;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_transcript)).routes(routes!(get_recording))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transcript {
    pub call_id: Id,
    /// The conversation in order; times are milliseconds from the start of the recording.
    pub turns: Vec<Turn>,
}

#[utoipa::path(get, path = "/calls/{id}/transcript", tag = "calls",
    description = "The call's turns (speaker, text, start/end in ms, confidence, interrupted). Each turn is saved as \
it ends, so during a call this shows the conversation so far; the final transcript is there when the call ends \
(`call.transcript.available`). 404 `not_found` before the first turn or for a call that never connected.",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, description = "The call's transcript", body = Transcript), ErrorResponses),
    security(("bearer" = [])))]
async fn get_transcript(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<Transcript>> {
    calls::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Call"))?;
    let turns =
        call_sessions::transcript(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Transcript"))?;
    Ok(Json(Transcript { call_id: id, turns }))
}

#[utoipa::path(get, path = "/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path, description = "Call id"),
        ("Range" = Option<String>, Header, description = "Optional byte range, e.g. `bytes=0-1023`")),
    responses(
        (status = 200, description = "The recording: 16-bit PCM stereo WAV at 8 kHz, caller left, bot right",
            content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "The requested byte range", content_type = "audio/wav", body = Vec<u8>),
        ErrorResponses),
    security(("bearer" = [])))]
async fn get_recording(
    State(state): State<AppState>,
    Auth(who): Auth,
    PathId(id): PathId,
    request: Request,
) -> ApiResult<Response> {
    calls::get(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Call"))?;
    let recording =
        call_sessions::recording(&state.db, &who.account_id, &id).await?.ok_or(ApiError::not_found("Recording"))?;
    let path = state.config.store.data_dir.join(&recording.path);
    if !path.is_file() {
        return Err(ApiError::not_found("Recording"));
    }
    // ServeFile answers Range, If-Range and HEAD the way browsers and players expect.
    let mut response = match ServeFile::new(&path).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok(response)
}
