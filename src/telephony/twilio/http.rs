//! Twilio's side doors: `POST /twilio/voice` (TwiML for an answered or inbound call),
//! `POST /twilio/status` (status callbacks) and `GET /twilio/stream` (the Media Stream).
//!
//! The two webhooks must carry a valid `X-Twilio-Signature` over the public URL plus the
//! request's path and query, made with the auth token of the Twilio account in `AccountSid`:
//! an account's own carrier (`/v1/carriers`) or the gateway's default. Without one they are
//! refused (403). What a webhook may touch is limited to that Twilio account's numbers and
//! calls (`legs::Via`). A stream
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
use crate::session::legs::{self, InboundAnswer, Leg, StreamGrant, Via};
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

/// A webhook whose signature checked out: its parameters, and the account's carrier whose
/// Twilio account signed it (`None`: the gateway's default account).
struct Verified {
    params: Vec<(String, String)>,
    carrier_id: Option<Id>,
}

impl Verified {
    fn via(&self) -> Via<'_> {
        Via { carrier: "twilio", carrier_id: self.carrier_id.as_ref() }
    }
}

/// The parameters of a Twilio webhook, if its signature is valid: the form body of a POST
/// (signed after the URL), or the query of a GET (signed as part of the URL). Refused: 403;
/// the signer's token could not be looked up: 503, so Twilio tries its fallback.
async fn verified_params(
    state: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: Option<&Bytes>,
) -> Result<Verified, Response> {
    let Some(signature) = headers.get("x-twilio-signature").and_then(|s| s.to_str().ok()) else {
        return Err(forbidden());
    };
    let path_and_query = uri.0.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", state.config.public_base_url(), path_and_query);
    let (params, signed_after_url) = match body {
        Some(body) => (form_urlencoded::parse(body).into_owned().collect::<Vec<_>>(), true),
        None => (form_urlencoded::parse(uri.0.query().unwrap_or("").as_bytes()).into_owned().collect(), false),
    };
    let signer = match state.calls.twilio.signer(state, param(&params, "AccountSid")).await {
        Ok(Some(signer)) => signer,
        Ok(None) => return Err(forbidden()),
        Err(error) => {
            tracing::error!(%error, "cannot look up the Twilio account of a webhook");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    let signed = if signed_after_url { params.as_slice() } else { &[] };
    if !signature::verify(&signer.auth_token, &url, signed, signature) {
        return Err(forbidden());
    }
    Ok(Verified { params, carrier_id: signer.carrier_id })
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn query_call_id(uri: &OriginalUri) -> Option<Id> {
    let query = uri.0.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "callId").and_then(|(_, v)| Id::parse(&v).ok())
}

async fn voice(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    match verified_params(&state, &uri, &headers, Some(&body)).await {
        Ok(webhook) => answer_voice(&state, &uri, &webhook).await,
        Err(refused) => refused,
    }
}

async fn voice_by_get(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap) -> Response {
    match verified_params(&state, &uri, &headers, None).await {
        Ok(webhook) => answer_voice(&state, &uri, &webhook).await,
        Err(refused) => refused,
    }
}

/// TwiML for a call we placed that was just answered (`?callId=`), or for an inbound call.
async fn answer_voice(state: &AppState, uri: &OriginalUri, webhook: &Verified) -> Response {
    let result = match query_call_id(uri) {
        Some(call_id) => outbound_twiml(state, webhook.via(), &call_id).await,
        None => inbound_twiml(state, webhook).await,
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

async fn outbound_twiml(state: &AppState, via: Via<'_>, call_id: &Id) -> Result<String, crate::store::StoreError> {
    Ok(match legs::outbound_answered(state, via, call_id).await? {
        Some(grant) => connect_stream(state, &grant),
        None => twiml::hang_up(None),
    })
}

async fn inbound_twiml(state: &AppState, webhook: &Verified) -> Result<String, crate::store::StoreError> {
    let params = &webhook.params;
    let (Some(to), Some(from), Some(call_sid)) = (param(params, "To"), param(params, "From"), param(params, "CallSid"))
    else {
        return Ok(twiml::hang_up(None));
    };
    Ok(match legs::inbound_call(state, webhook.via(), to, from, call_sid).await? {
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
    match verified_params(&state, &uri, &headers, Some(&body)).await {
        Ok(webhook) => apply_status_callback(&state, &uri, &webhook).await,
        Err(refused) => refused,
    }
}

async fn status_by_get(State(state): State<AppState>, uri: OriginalUri, headers: HeaderMap) -> Response {
    match verified_params(&state, &uri, &headers, None).await {
        Ok(webhook) => apply_status_callback(&state, &uri, &webhook).await,
        Err(refused) => refused,
    }
}

async fn apply_status_callback(state: &AppState, uri: &OriginalUri, webhook: &Verified) -> Response {
    let params = &webhook.params;
    let call_id = query_call_id(uri);
    let call_sid = param(params, "CallSid");
    let leg = match (&call_id, call_sid) {
        (Some(id), _) => Leg::Call(id),
        (None, Some(sid)) => Leg::Carrier(sid),
        (None, None) => return StatusCode::NO_CONTENT.into_response(),
    };
    let duration = param(params, "CallDuration").and_then(|d| d.parse().ok());
    let Some(report) =
        param(params, "CallStatus").and_then(|s| CarrierStatus::from_twilio(s, duration, param(params, "AnsweredBy")))
    else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if let Err(error) = legs::report_status(state, webhook.via(), leg, call_sid, report).await {
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
