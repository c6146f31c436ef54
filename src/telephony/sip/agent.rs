//! The SIP user agent on `--sip-listen` (UDP and TCP), on rsipstack: a trunk's INVITE to one of
//! our numbers (`carrier: "sip"`) is answered with our SDP and becomes a call running the
//! number's template over `RtpMedia`; OPTIONS (trunk keepalives) get 200. Refusals carry the
//! code a trunk acts on: 403 for an address outside `--sip-allow`, 404 for a number we do not
//! have, 488 for no common codec, 486 when every line is busy, 503 when no RTP port is free,
//! 400 for SDP we cannot read.
//!
//! What to answer is decided by `refusal`, a pure function; the rest is I/O around rsipstack.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, HeadersExt, Method, StatusCode, ToTypedHeader};
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::media::{DialogLink, RtpMedia, RtpMediaConfig};
use super::sdp::{self, Codec, LocalMedia, SdpError};
use crate::app::AppState;
use crate::config::SipConfig;
use crate::domain::Phone;
use crate::domain::status::{CallStatus, Outcome};
use crate::session::legs::{self, Leg, Via};
use crate::store::{call_sessions, phone_numbers};
use crate::telephony::carrier::CarrierStatus;

const VIA: Via<'static> = Via { carrier: "sip", carrier_id: None };
/// The codecs we answer with, in no order of ours: the offerer's order decides.
const SPEAK: &[Codec] = &[Codec::Pcmu, Codec::Pcma, Codec::Opus];

/// Why an INVITE is refused, in the order the checks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The source address is not in `--sip-allow`.
    NotAllowed,
    /// The called number is not one of ours on the SIP trunk.
    UnknownNumber,
    Sdp(SdpError),
    /// No offer in the INVITE (late offer is not supported yet).
    NoOffer,
    Busy,
    NoRtpPort,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotAllowed => StatusCode::Forbidden,
            Refusal::UnknownNumber => StatusCode::NotFound,
            Refusal::Sdp(SdpError::Unreadable(_)) => StatusCode::BadRequest,
            Refusal::Sdp(SdpError::NotAcceptable(_)) | Refusal::NoOffer => StatusCode::NotAcceptableHere,
            Refusal::Busy => StatusCode::BusyHere,
            Refusal::NoRtpPort => StatusCode::ServiceUnavailable,
        }
    }
}

/// The number an INVITE calls, in E.164: the Request-URI's user part, else the `To` user
/// (`+` optional; visual separators and URI parameters dropped).
pub fn called_number(request_user: Option<&str>, to_user: Option<&str>) -> Option<Phone> {
    [request_user, to_user].into_iter().flatten().find_map(|user| {
        let user = user.split(';').next().unwrap_or_default();
        let digits: String = user.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || user.chars().any(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        Phone::parse(&format!("+{digits}")).ok()
    })
}

/// RTP ports handed out round the range; a port in use is skipped.
struct RtpPorts {
    first: u16,
    count: u32,
    next: AtomicU32,
}

impl RtpPorts {
    fn new((first, last): (u16, u16)) -> RtpPorts {
        RtpPorts { first, count: u32::from(last - first) + 1, next: AtomicU32::new(0) }
    }

    /// A socket on the next free even port (RTP on even, RTCP on the odd one after).
    async fn bind(&self, ip: IpAddr) -> Option<UdpSocket> {
        let pairs = (self.count / 2).max(1);
        for _ in 0..pairs.min(64) {
            let slot = self.next.fetch_add(1, Ordering::Relaxed) % pairs;
            let port = self.first + (2 * slot) as u16;
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
                return Some(socket);
            }
        }
        None
    }
}

/// A bound SIP endpoint, ready to run.
pub struct SipAgent {
    endpoint: Endpoint,
    dialogs: Arc<DialogLayer>,
    config: SipConfig,
    local: SocketAddr,
    ports: Arc<RtpPorts>,
    cancel: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum SipStartError {
    #[error("cannot listen for SIP on {address}: {reason}")]
    Bind { address: SocketAddr, reason: String },
}

impl SipAgent {
    /// Binds UDP and TCP on the configured address (port 0: one the system picks, the same
    /// for both).
    pub async fn bind(config: &SipConfig) -> Result<SipAgent, SipStartError> {
        let cancel = CancellationToken::new();
        let bind_error = |reason: String| SipStartError::Bind { address: config.listen, reason };
        let transports = TransportLayer::new(cancel.child_token());
        let udp = UdpConnection::create_connection(config.listen, config.public_address, Some(cancel.child_token()))
            .await
            .map_err(|e| bind_error(e.to_string()))?;
        let local = udp.get_addr().addr.to_string().parse::<SocketAddr>().map_err(|e| bind_error(e.to_string()))?;
        let tcp_address = SocketAddr::new(config.listen.ip(), local.port());
        let tcp = TcpListenerConnection::new(tcp_address, config.public_address)
            .await
            .map_err(|e| bind_error(e.to_string()))?;
        transports.add_transport(udp.into());
        transports.add_transport(tcp.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(concat!("callcenter/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(transports)
            .with_cancel_token(cancel.clone())
            .build();
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        Ok(SipAgent {
            endpoint,
            dialogs,
            config: config.clone(),
            local,
            ports: Arc::new(RtpPorts::new(config.rtp_ports)),
            cancel,
        })
    }

    /// The address SIP is answered on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Answers requests until the process stops.
    pub async fn run(self, state: AppState) {
        let mut incoming = match self.endpoint.incoming_transactions() {
            Ok(incoming) => incoming,
            Err(error) => {
                tracing::error!(%error, "the SIP endpoint has no request queue");
                return;
            }
        };
        let serving = {
            let inner = self.endpoint.inner.clone();
            tokio::spawn(async move { inner.serve().await })
        };
        let agent = Arc::new(self);
        while let Some(mut tx) = incoming.recv().await {
            if let Some(mut dialog) = agent.dialogs.match_dialog(&tx) {
                tokio::spawn(async move {
                    if let Err(error) = dialog.handle(&mut tx).await {
                        tracing::debug!(%error, "an in-dialog request failed");
                    }
                });
                continue;
            }
            let (agent, state) = (agent.clone(), state.clone());
            tokio::spawn(async move { agent.take(state, tx).await });
        }
        agent.cancel.cancel();
        serving.abort();
    }

    /// A request outside any dialog.
    async fn take(&self, state: AppState, mut tx: Transaction) {
        match tx.original.method {
            Method::Invite => self.invite(state, tx).await,
            Method::Options => reply_and_drain(tx, StatusCode::OK).await,
            // A BYE or CANCEL for a dialog we do not know, and anything else out of dialog.
            Method::Ack => {}
            Method::Bye | Method::Cancel => reply_and_drain(tx, StatusCode::CallTransactionDoesNotExist).await,
            _ => {
                let _ = tx.reply(StatusCode::MethodNotAllowed).await;
            }
        }
    }

    fn source_allowed(&self, tx: &Transaction) -> bool {
        source_ip(&tx.original).is_some_and(|ip| self.config.allow.iter().any(|net| net.contains(&ip)))
    }

    fn media_address(&self) -> IpAddr {
        match self.config.public_address {
            Some(public) => public.ip(),
            None => self.local.ip(),
        }
    }

    async fn invite(&self, state: AppState, mut tx: Transaction) {
        let request = tx.original.clone();
        if !self.source_allowed(&tx) {
            return refuse(tx, Refusal::NotAllowed).await;
        }
        let to_user =
            request.to_header().ok().and_then(|to| to.uri().ok()).and_then(|uri| uri.user().map(str::to_owned));
        let Some(called) = called_number(request.uri.user(), to_user.as_deref()) else {
            return refuse(tx, Refusal::UnknownNumber).await;
        };
        match phone_numbers::find_by_route(&state.db, &phone_numbers::sip_route(&called)).await {
            Ok(Some(_)) => {}
            Ok(None) => return refuse(tx, Refusal::UnknownNumber).await,
            Err(error) => {
                tracing::error!(%error, "cannot look up a SIP number");
                return reply_and_drain(tx, StatusCode::ServerInternalError).await;
            }
        }
        if request.body.is_empty() {
            return refuse(tx, Refusal::NoOffer).await;
        }
        let offer = String::from_utf8_lossy(&request.body).into_owned();
        // The port goes into the answer, so it is taken first; a refused call drops it.
        let Some(socket) = self.ports.bind(self.media_address_for_bind()).await else {
            return refuse(tx, Refusal::NoRtpPort).await;
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
        let local =
            LocalMedia { address: self.media_address(), port, session_id: rand::random::<u32>().into(), version: 1 };
        let (negotiated, answer) = match sdp::answer(&offer, &local, SPEAK) {
            Ok(agreed) => agreed,
            Err(error) => return refuse(tx, Refusal::Sdp(error)).await,
        };
        if state.calls.free_slots() == 0 {
            return refuse(tx, Refusal::Busy).await;
        }
        let from_user = request.from_header().ok().and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_owned));
        let caller = from_user.as_deref().map(|u| if u.starts_with('+') { u.to_owned() } else { format!("+{u}") });
        let call = match crate::session::inbound::create_inbound_call(
            &state,
            VIA,
            called.as_str(),
            caller.as_deref().unwrap_or(""),
        )
        .await
        {
            Ok(Some(call)) => call,
            Ok(None) => return refuse(tx, Refusal::UnknownNumber).await,
            Err(error) => {
                tracing::error!(%error, "cannot create a SIP call");
                return reply_and_drain(tx, StatusCode::ServerInternalError).await;
            }
        };
        if !state.calls.try_hold(&call.id) {
            let notes = "Every line of this gateway was in use; the caller was answered busy.".to_owned();
            let _ = crate::session::dispatcher::finish_without_audio(
                &state,
                &call.account_id,
                &call.id,
                CallStatus::Failed,
                Outcome::Busy,
                notes,
            )
            .await;
            return refuse(tx, Refusal::Busy).await;
        }
        if let Ok(call_id) = request.call_id_header() {
            let _ = call_sessions::set_carrier_call_id(&state.db, &call.id, call_id.value(), state.clock.now()).await;
        }
        let (state_sender, dialog_states) = self.dialogs.new_dialog_state_channel();
        let dialog = match self.dialogs.get_or_create_server_invite(&tx, state_sender, None, None) {
            Ok(dialog) => dialog,
            Err(error) => {
                tracing::warn!(%error, "cannot open a SIP dialog");
                state.calls.release(&call.id);
                let _ = legs::report_status(
                    &state,
                    VIA,
                    Leg::Call(&call.id),
                    None,
                    CarrierStatus::Failed { reason: error.to_string() },
                )
                .await;
                return reply_and_drain(tx, StatusCode::ServerInternalError).await;
            }
        };
        let content_type = vec![Header::ContentType("application/sdp".into())];
        if let Err(error) = dialog.accept(Some(content_type), Some(answer.into_bytes())) {
            tracing::warn!(%error, "cannot answer a SIP call");
        }
        {
            let mut handler = dialog.clone();
            tokio::spawn(async move {
                if let Err(error) = handler.handle(&mut tx).await {
                    tracing::debug!(%error, "the INVITE transaction ended with an error");
                }
            });
        }
        let media = match RtpMedia::new(Arc::new(socket), &negotiated, RtpMediaConfig::default()) {
            Ok(media) => media,
            Err(error) => {
                tracing::warn!(%error, "cannot start a SIP call's media");
                let _ = dialog.bye().await;
                state.calls.release(&call.id);
                return;
            }
        };
        follow_dialog(state, call.account_id, call.id, dialog, dialog_states, media).await;
    }

    /// The address RTP sockets bind to: the listen address (all interfaces when it is).
    fn media_address_for_bind(&self) -> IpAddr {
        self.config.listen.ip()
    }
}

/// Waits for the caller's ACK, then runs the call's session over the media; the dialog's end
/// ends the media, and the session's end sends our BYE.
async fn follow_dialog(
    state: AppState,
    account_id: crate::domain::Id,
    call_id: crate::domain::Id,
    dialog: rsipstack::dialog::invite_dialog::InviteDialog,
    mut states: DialogStateReceiver,
    media: RtpMedia,
) {
    let confirmed = loop {
        match states.recv().await {
            Some(DialogState::Confirmed(..)) => break true,
            Some(DialogState::Terminated(..)) | None => break false,
            Some(_) => {}
        }
    };
    if !confirmed {
        // Cancelled (or never acknowledged) before it was answered.
        let _ = legs::report_status(&state, VIA, Leg::Call(&call_id), None, CarrierStatus::Canceled).await;
        return;
    }
    let far_end_gone = Arc::new(tokio::sync::Notify::new());
    let (hang_up, hung_up) = tokio::sync::oneshot::channel();
    let media = media.with_dialog(DialogLink { far_end_gone: far_end_gone.clone(), hang_up: Some(hang_up) });
    tokio::spawn(async move {
        tokio::select! {
            _ = hung_up => {
                let _ = dialog.bye().await;
            }
            _ = async {
                while let Some(state) = states.recv().await {
                    if matches!(state, DialogState::Terminated(..)) {
                        break;
                    }
                }
            } => far_end_gone.notify_one(),
        }
    });
    legs::media_connected(state, account_id, call_id, media).await;
}

/// Where a request came from: the top Via's `received` (the transport adds it when the
/// packet's source differs from what the Via claims), else the Via's own host.
fn source_ip(request: &rsipstack::sip::Request) -> Option<IpAddr> {
    let via: rsipstack::sip::typed::Via = request.top_via_header().ok()?.typed().ok()?;
    let received = via.params.iter().find_map(|p| match p {
        rsipstack::sip::Param::Received(r) => Some(r.to_string()),
        _ => None,
    });
    let host = received.unwrap_or_else(|| via.uri.host_with_port.host.to_string());
    host.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

async fn refuse(tx: Transaction, refusal: Refusal) {
    tracing::info!(?refusal, "refused a SIP call");
    reply_and_drain(tx, refusal.status()).await;
}

/// Sends a final response and keeps the transaction until it ends (absorbing the ACK of a
/// refused INVITE and answering retransmissions).
async fn reply_and_drain(mut tx: Transaction, status: StatusCode) {
    if tx.reply(status).await.is_err() {
        return;
    }
    while tx.receive().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_called_number_comes_from_the_request_uri_or_else_the_to_user() {
        let e164 = |p: Option<Phone>| p.map(|p| p.as_str().to_owned());
        assert_eq!(e164(called_number(Some("+14155550199"), None)).as_deref(), Some("+14155550199"));
        assert_eq!(e164(called_number(Some("14155550199"), None)).as_deref(), Some("+14155550199"));
        assert_eq!(e164(called_number(Some("14155550199;npdi"), None)).as_deref(), Some("+14155550199"));
        assert_eq!(e164(called_number(None, Some("+442079460958"))).as_deref(), Some("+442079460958"));
        assert_eq!(e164(called_number(Some("service"), Some("14155550199"))).as_deref(), Some("+14155550199"));
        assert_eq!(called_number(Some("alice"), None), None);
        assert_eq!(called_number(None, None), None);
    }

    #[test]
    fn each_refusal_has_the_code_a_trunk_acts_on() {
        assert_eq!(Refusal::NotAllowed.status(), StatusCode::Forbidden);
        assert_eq!(Refusal::UnknownNumber.status(), StatusCode::NotFound);
        assert_eq!(Refusal::Sdp(SdpError::NotAcceptable("x".into())).status(), StatusCode::NotAcceptableHere);
        assert_eq!(Refusal::Sdp(SdpError::Unreadable("x".into())).status(), StatusCode::BadRequest);
        assert_eq!(Refusal::Busy.status(), StatusCode::BusyHere);
        assert_eq!(Refusal::NoRtpPort.status(), StatusCode::ServiceUnavailable);
    }
}
