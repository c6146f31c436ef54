//! The carriers' one door into the call layer. A carrier adapter (Twilio's webhooks and media
//! stream, the simulator, SIP next) reports what happened to a call leg here, and the session
//! and dispatcher decide what it means for the call: its status, its slot, its stream token,
//! its session. Adapters never reach into the dispatcher or the store themselves.

use crate::app::AppState;
use crate::domain::Id;
use crate::domain::status::{CallStatus, Outcome};
use crate::session::transport::MediaTransport;
use crate::store::{StoreResult, call_sessions, calls};
use crate::telephony::carrier::CarrierStatus;

/// How long a stream token stays valid after it is handed out.
pub const STREAM_TOKEN_TTL_SECS: i64 = 120;

/// Which leg a report is about.
#[derive(Debug, Clone, Copy)]
pub enum Leg<'a> {
    /// Our call id (carried in the webhook URL we gave the carrier).
    Call(&'a Id),
    /// The carrier's own id for the leg (Twilio's `CallSid`).
    Carrier(&'a str),
}

/// Where a report comes from: the carrier, and which of the accounts' carrier accounts
/// vouched for it (the Twilio account whose token signed the webhook). A report about a leg
/// on another carrier account is not this one's to make, and is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub carrier: &'static str,
    /// `None`: the simulator, or the gateway's default Twilio account.
    pub carrier_id: Option<&'a Id>,
}

impl Via<'_> {
    pub const SIMULATOR: Via<'static> = Via { carrier: "simulator", carrier_id: None };

    fn owns(&self, leg: &call_sessions::LegRecord) -> bool {
        leg.carrier == self.carrier && leg.carrier_id.as_ref() == self.carrier_id
    }
}

/// The right to open a call's media stream: the call and its single-use token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrant {
    pub call_id: Id,
    pub token: String,
}

/// A carrier's report on a leg: the carrier's id for it and its machine-detection verdict are
/// stored; a leg that ends before it was answered ends its call (an answered one is ended by
/// its session when the media stops).
pub async fn report_status(
    state: &AppState,
    via: Via<'_>,
    leg: Leg<'_>,
    carrier_call_id: Option<&str>,
    report: CarrierStatus,
) -> StoreResult<()> {
    let call_id = match leg {
        Leg::Call(id) => Some(id.clone()),
        Leg::Carrier(id) => call_sessions::find_by_carrier_call(&state.db, via.carrier, id).await?.map(|(_, id)| id),
    };
    let Some(call_id) = call_id else { return Ok(()) };
    let Some(record) = call_sessions::leg(&state.db, &call_id).await? else { return Ok(()) };
    if !via.owns(&record) {
        tracing::warn!(call = %call_id, "ignored a status report from a carrier account the call is not on");
        return Ok(());
    }
    let account_id = record.account_id;
    if let Some(sid) = carrier_call_id {
        call_sessions::set_carrier_call_id(&state.db, &call_id, sid, state.clock.now()).await?;
    }
    if let CarrierStatus::Answered { answered_by: Some(by) } = &report {
        call_sessions::set_answered_by(&state.db, &call_id, by, state.clock.now()).await?;
    }
    let Some(call) = calls::get(&state.db, &account_id, &call_id).await? else { return Ok(()) };
    if matches!(call.status, CallStatus::Ringing | CallStatus::Queued) && report.unanswered_end().is_some() {
        super::dispatcher::end_unanswered(state, &call, report).await?;
    } else if call.status == CallStatus::Cancelled && call.started_at.is_none() && report.unanswered_end().is_some() {
        // Cancelled while ringing: the carrier confirms the leg is gone, so its slot is free
        // on this node too (a no-op where the cancel already freed it).
        state.calls.release(&call_id);
    }
    Ok(())
}

/// What to tell the carrier about an inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundAnswer {
    /// The call is created, ringing, and may open its media stream with the grant.
    Connect(StreamGrant),
    /// `to` is not one of our numbers.
    NotOurs,
    /// Every call slot of this node is taken: the carrier should answer busy.
    Busy,
    /// The carrier's id for the leg is already known: a replayed webhook (Twilio's signatures
    /// carry no timestamp), which must not ring a second call or take a second slot.
    Replayed,
}

/// An inbound call from `from` to our number `to` on `carrier`. It is admitted under the
/// node's call limit like any other call.
pub async fn inbound_call(
    state: &AppState,
    via: Via<'_>,
    to: &str,
    from: &str,
    carrier_call_id: &str,
) -> StoreResult<InboundAnswer> {
    let carrier = via.carrier;
    if call_sessions::find_by_carrier_call(&state.db, carrier, carrier_call_id).await?.is_some() {
        return Ok(InboundAnswer::Replayed);
    }
    if state.calls.free_slots() == 0 {
        return Ok(InboundAnswer::Busy);
    }
    let Some(call) = super::inbound::create_inbound_call(state, via, to, from).await? else {
        return Ok(InboundAnswer::NotOurs);
    };
    // The unique (carrier, carrier_call_id) index settles two replays that raced past the check.
    if let Err(error) =
        call_sessions::set_carrier_call_id(&state.db, &call.id, carrier_call_id, state.clock.now()).await
    {
        let notes = format!("A second webhook for carrier call {carrier_call_id} was refused.");
        super::dispatcher::finish_without_audio(
            state,
            &call.account_id,
            &call.id,
            CallStatus::Failed,
            Outcome::Failed,
            notes,
        )
        .await?;
        return match call_sessions::find_by_carrier_call(&state.db, carrier, carrier_call_id).await? {
            Some(_) => Ok(InboundAnswer::Replayed),
            None => Err(error),
        };
    }
    if !state.calls.try_hold(&call.id) {
        // Another call took the last slot since the check above.
        let notes = "Every line of this gateway was in use; the caller was answered busy.".to_owned();
        super::dispatcher::finish_without_audio(
            state,
            &call.account_id,
            &call.id,
            CallStatus::Failed,
            Outcome::Busy,
            notes,
        )
        .await?;
        return Ok(InboundAnswer::Busy);
    }
    Ok(match grant(state, &call.id).await? {
        Some(grant) => InboundAnswer::Connect(grant),
        None => InboundAnswer::Replayed,
    })
}

/// The callee of an outbound call answered: the leg may open its media stream with the grant.
/// `None` for a call we have no leg for (not ours, or already closed), or whose grant was
/// already handed out (a replayed webhook).
pub async fn outbound_answered(state: &AppState, via: Via<'_>, call_id: &Id) -> StoreResult<Option<StreamGrant>> {
    match call_sessions::leg(&state.db, call_id).await? {
        Some(leg) if via.owns(&leg) => {}
        _ => return Ok(None),
    }
    grant(state, call_id).await
}

async fn grant(state: &AppState, call_id: &Id) -> StoreResult<Option<StreamGrant>> {
    let now = state.clock.now();
    let expires = now.plus_seconds(STREAM_TOKEN_TTL_SECS);
    let token = call_sessions::issue_stream_token(&state.db, call_id, expires, now).await?;
    Ok(token.map(|token| StreamGrant { call_id: call_id.clone(), token }))
}

/// A leg whose carrier authenticated it itself (a SIP dialog from an allowed trunk, answered
/// with our SDP) has its media up: its session runs the call to its end.
pub async fn media_connected<T: MediaTransport>(state: AppState, account_id: Id, call_id: Id, transport: T) {
    super::start(state, account_id, call_id, transport).await;
}

/// A leg's media started on `transport`, presenting `call_id` and `token`: if the token is the
/// call's (single use, unexpired), its session runs the call to its end. Returns false when
/// the stream was refused (and closed).
pub async fn media_started<T: MediaTransport>(state: AppState, call_id: &str, token: &str, mut transport: T) -> bool {
    let Ok(call_id) = Id::parse(call_id) else {
        transport.close().await;
        return false;
    };
    let now = state.clock.now();
    let account_id = match call_sessions::consume_stream_token(&state.db, &call_id, token, now).await {
        Ok(Some(account_id)) => account_id,
        _ => {
            let mut transport = transport;
            transport.close().await;
            return false;
        }
    };
    super::start(state, account_id, call_id, transport).await;
    true
}
