//! Twilio's side doors: `POST /twilio/voice` (TwiML for an answered or inbound call),
//! `POST /twilio/status` (status callbacks) and `GET /twilio/stream` (the Media Stream).
//!
//! The two webhooks must carry a valid `X-Twilio-Signature` over the public URL plus the
//! request's path and query; without a configured auth token they are refused (403). A stream
//! is admitted only when its `start` message carries the call's single-use, expiring token,
//! which only our own TwiML (or the simulator carrier, which stands in for Twilio) hands out.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;

use super::media::TwilioMedia;
use super::signature;
use super::stream::{Inbound, StartMeta};
use super::twiml;
use crate::app::AppState;
use crate::domain::Id;
use crate::session::legs::{self, InboundAnswer, Leg, StreamGrant};
use crate::telephony::carrier::CarrierStatus;
/// How long a new stream may take to send `start`.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message and frame a stream may send: Twilio's biggest, `start`, is a few KB, a
/// `media` message about 300 bytes (tungstenite's default would let one be 64 MiB).
pub const MAX_STREAM_MESSAGE: usize = 64 * 1024;
/// Messages a stream may send before `start` (Twilio sends one, `connected`).
const MESSAGES_BEFORE_START: usize = 4;

pub fn router() -> Router<AppState> {
    Router::new()
        // Twilio calls webhooks with POST by default; a number may be set to GET, which
        // carries the parameters in the query (signed as part of the URL).
        .route("/twilio/voice", post(voice).get(voice_by_get))
        .route("/twilio/status", post(status).get(status_by_get))
        .route("/twilio/stream", get(stream))
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "invalid or missing X-Twilio-Signature").into_response()
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// The parameters of a Twilio webhook, if its signature is valid: the form body of a POST
/// (signed after the URL), or the query of a GET (signed as part of the URL).
fn verified_params(
    state: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: Option<&Bytes>,
) -> Option<Vec<(String, String)>> {
    let twilio = state.config.telephony.twilio.as_ref()?;
    let signature = headers.get("x-twilio-signature")?.to_str().ok()?;
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", state.config.public_base_url(), path_and_query);
    let (params, signed_after_url) = match body {
        Some(body) => (form_urlencoded::parse(body).into_owned().collect::<Vec<_>>(), true),
        None => (form_urlencoded::parse(uri.0.query().unwrap_or("").as_bytes()).into_owned().collect(), false),
    };
    let signed = if signed_after_url { params.as_slice() } else { &[] };
    signature::verify(&twilio.auth_token, &url, signed, signature).then_some(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn query_call_id(uri: &OriginalUri) -> Option<Id> {
    let query = uri.0.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "callId").and_then(|(_, v)| Id::parse(&v).ok())
}

async fn voice(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(params) = verified_params(&state, &uri, &headers, Some(&body)) else { return forbidden() };
    answer_voice(&state, &uri, &params).await
}

async fn voice_by_get(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap) -> Response {
    let Some(params) = verified_params(&state, &uri, &headers, None) else { return forbidden() };
    answer_voice(&state, &uri, &params).await
}

/// TwiML for a call we placed that was just answered (`?callId=`), or for an inbound call.
async fn answer_voice(state: &AppState, uri: &OriginalUri, params: &[(String, String)]) -> Response {
    let result = match query_call_id(uri) {
        Some(call_id) => outbound_twiml(state, &call_id).await,
        None => inbound_twiml(state, params).await,
    };
    match result {
        Ok(body) => xml(body),
        Err(error) => {
            tracing::error!(%error, "cannot answer /twilio/voice");
            xml(twiml::hang_up(Some("Sorry, we cannot take this call right now.")))
        }
    }
}

fn stream_url(state: &AppState) -> String {
    let base = state.config.public_base_url();
    let ws = base.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
    format!("{ws}/twilio/stream")
}

/// `<Connect><Stream>` to our stream door, carrying the grant as `<Parameter>`s.
fn connect_stream(state: &AppState, grant: &StreamGrant) -> String {
    twiml::connect_stream(&stream_url(state), &[("callId", grant.call_id.as_str()), ("token", &grant.token)])
}

async fn outbound_twiml(state: &AppState, call_id: &Id) -> Result<String, crate::store::StoreError> {
    Ok(match legs::outbound_answered(state, call_id).await? {
        Some(grant) => connect_stream(state, &grant),
        None => twiml::hang_up(None),
    })
}

async fn inbound_twiml(state: &AppState, params: &[(String, String)]) -> Result<String, crate::store::StoreError> {
    let (Some(to), Some(from), Some(call_sid)) = (param(params, "To"), param(params, "From"), param(params, "CallSid"))
    else {
        return Ok(twiml::hang_up(None));
    };
    Ok(match legs::inbound_call(state, "twilio", to, from, call_sid).await? {
        InboundAnswer::Connect(grant) => connect_stream(state, &grant),
        InboundAnswer::NotOurs => twiml::hang_up(Some("The number you have called is not in service.")),
        InboundAnswer::Busy => twiml::reject_busy(),
        InboundAnswer::Replayed => {
            tracing::warn!(call_sid, "refused a replayed /twilio/voice for a call we already have");
            twiml::hang_up(None)
        }
    })
}

/// Twilio's status callbacks. A call that ends unanswered is closed here; one that was
/// answered is closed by its session when the stream stops.
async fn status(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(params) = verified_params(&state, &uri, &headers, Some(&body)) else { return forbidden() };
    apply_status_callback(&state, &uri, &params).await
}

async fn status_by_get(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap) -> Response {
    let Some(params) = verified_params(&state, &uri, &headers, None) else { return forbidden() };
    apply_status_callback(&state, &uri, &params).await
}

async fn apply_status_callback(state: &AppState, uri: &OriginalUri, params: &[(String, String)]) -> Response {
    let call_id = query_call_id(uri);
    let call_sid = param(params, "CallSid");
    let leg = match (&call_id, call_sid) {
        (Some(id), _) => Leg::Call(id),
        (None, Some(sid)) => Leg::Carrier { carrier: "twilio", id: sid },
        (None, None) => return StatusCode::NO_CONTENT.into_response(),
    };
    let duration = param(params, "CallDuration").and_then(|d| d.parse().ok());
    let Some(report) =
        param(params, "CallStatus").and_then(|s| CarrierStatus::from_twilio(s, duration, param(params, "AnsweredBy")))
    else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if let Err(error) = legs::report_status(state, leg, call_sid, report).await {
        tracing::warn!(?leg, %error, "cannot apply a Twilio status callback");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn stream(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Response {
    let peer = peer.map(|p| p.0.0.ip());
    let Some(waiting) = state.calls.unadmitted_streams.enter(peer) else {
        tracing::warn!("refused a media stream: too many streams are waiting for their start");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    ws.max_message_size(MAX_STREAM_MESSAGE)
        .max_frame_size(MAX_STREAM_MESSAGE)
        .on_upgrade(move |socket| admit_stream(state, socket, waiting))
}

/// Waits for `start`, then hands the stream, as a media transport, to the call layer with the
/// call token `start` carries (the call layer refuses and closes it without a valid one).
async fn admit_stream(state: AppState, mut socket: WebSocket, waiting: crate::session::runtime::StreamPass) {
    let start = tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut socket)).await;
    drop(waiting);
    let start = match start {
        Ok(Some(start)) => start,
        _ => {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    let parameter = |name: &str| start.custom_parameters.get(name).map(String::as_str).unwrap_or_default();
    let (call_id, token) = (parameter("callId").to_owned(), parameter("token").to_owned());
    let transport = TwilioMedia::new(socket, &start.stream_sid);
    if !legs::media_started(state, &call_id, &token, transport).await {
        tracing::warn!(stream = %start.stream_sid, "refused a media stream without a valid call token");
    }
}

async fn wait_for_start(socket: &mut WebSocket) -> Option<StartMeta> {
    let mut seen = 0;
    while let Some(Ok(message)) = socket.next().await {
        seen += 1;
        if seen > MESSAGES_BEFORE_START {
            return None;
        }
        match message {
            Message::Text(text) => match Inbound::parse(text.as_str()) {
                Ok(Inbound::Start(start)) => return Some(start),
                Ok(Inbound::Connected { .. }) => continue,
                // Media before start, garbage, anything else: not a stream we admit.
                _ => return None,
            },
            Message::Close(_) => return None,
            _ => continue,
        }
    }
    None
}
