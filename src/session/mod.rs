//! One task per call. The call's decisions live in [`core::CallCore`], a sans-IO state
//! machine; [`driver`] runs it: it feeds it the transport's frames (with their VAD score), DTMF
//! and marks, the model pools' results and a 20 ms tick, and carries out what it asks for
//! (frames to send, marks, `clear`, transcriptions, end-of-turn verdicts, syntheses, the
//! transcript). Transports plug in through [`transport::MediaTransport`]: Twilio Media Streams
//! (`telephony::twilio::media`) today. Model work runs on the shared pools and comes back over
//! a bounded channel, so the loop itself only waits on I/O.

pub mod core;
pub mod dispatcher;
mod driver;
pub mod inbound;
pub mod legs;
mod recording;
pub mod runtime;
pub mod setup;
mod speech;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::app::AppState;
use crate::dialogue::CallbackTime;
use crate::domain::status::{CallStatus, Outcome};
use crate::domain::{Id, Timestamp};
use crate::session::transport::MediaTransport;
use crate::speech::engine::SpeechEngine;
use crate::store::calls;

pub use setup::CallSetup;

/// How often a session looks in the database for a cancellation made through another node
/// (one made on this node arrives at once through `CallRuntime::request_hang_up`).
const CANCEL_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("speech: {0}")]
    Speech(#[from] crate::speech::SpeechError),
    #[error("vad: {0}")]
    Vad(String),
    #[error("recording: {0}")]
    Recording(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("call core: {0}")]
    Core(#[from] core::CoreError),
}

/// The moment a callback the callee asked for falls: read on the wall clock of the call's
/// campaign (its schedule's zone), else in UTC. "Later" has no moment.
async fn callback_moment(state: &AppState, setup: &CallSetup, when: CallbackTime, now: Timestamp) -> Option<Timestamp> {
    let zone = match &setup.call.campaign_id {
        Some(id) => crate::store::campaigns::get(&state.db, &setup.account_id, id)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.schedule)
            .and_then(|s| jiff::tz::TimeZone::get(&s.time_zone).ok()),
        None => None,
    };
    let local = now.as_jiff().to_zoned(zone.unwrap_or(jiff::tz::TimeZone::UTC));
    when.resolve(&local).map(|at| Timestamp::from_jiff(at.timestamp()))
}

/// Takes over an admitted media stream (through `legs::media_started`): marks the call
/// answered (emitting `call.started`), prepares its script and the models, runs the
/// conversation, and frees the call's slot.
async fn start<T: MediaTransport>(state: AppState, account_id: Id, call_id: Id, mut transport: T) {
    let answered = calls::mark_answered(&state.db, &account_id, &call_id, state.clock.now()).await;
    state.relay.wake();
    let call = match answered {
        Ok(Some(call)) => call,
        Ok(None) => {
            tracing::warn!(call = %call_id, "a stream arrived for a call that is not ringing");
            transport.close().await;
            state.calls.release(&call_id);
            return;
        }
        Err(error) => {
            tracing::error!(call = %call_id, %error, "cannot mark the call answered");
            transport.close().await;
            state.calls.release(&call_id);
            return;
        }
    };
    let prepared = async {
        let setup = setup::load(&state, &account_id, call).await.map_err(|e| e.to_string())?;
        let engine = state.calls.speech().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((setup, engine))
    }
    .await;
    match prepared {
        Ok((setup, engine)) => run(state.clone(), engine, setup, transport).await,
        Err(reason) => {
            tracing::error!(call = %call_id, %reason, "cannot run the call");
            transport.close().await;
            let notes = format!("The call could not run: {reason}.");
            let _ = dispatcher::finish_without_audio(
                &state,
                &account_id,
                &call_id,
                CallStatus::Failed,
                Outcome::Failed,
                notes,
            )
            .await;
        }
    }
    state.calls.release(&call_id);
}

/// Hangs up a call that `calls::cancel` just cancelled. A ringing call is ended at its
/// carrier (a simulated callee that picks up anyway finds its stream refused). An
/// in-progress call's session is told to hang up: at once on this node, within
/// `CANCEL_POLL` on another.
pub async fn hang_up(state: &AppState, call_id: &Id, was: CallStatus) {
    match was {
        CallStatus::Ringing => {
            hang_up_at_carrier(state, call_id, false).await;
            state.calls.release(call_id);
        }
        CallStatus::InProgress => {
            state.calls.request_hang_up(call_id);
        }
        _ => {}
    }
}

/// Ends the carrier's leg of a call. Closing a Twilio media stream alone also ends the call,
/// since our TwiML has nothing after `<Connect>`; this makes it explicit and immediate.
async fn hang_up_at_carrier(state: &AppState, call_id: &Id, answered: bool) {
    let Ok(Some(leg)) = crate::store::call_sessions::leg(&state.db, call_id).await else { return };
    let Some(carrier_call_id) = &leg.carrier_call_id else { return };
    let carrier = match state.calls.carrier_of_leg(state, &leg.carrier, leg.carrier_id.as_ref()).await {
        Ok(Some(carrier)) => carrier,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(call = %call_id, %error, "cannot reach the leg's carrier to hang up");
            return;
        }
    };
    if let Err(error) = carrier.hang_up(carrier_call_id, answered).await {
        tracing::warn!(call = %call_id, %error, "the carrier did not take the hang-up");
    }
}

/// How often a session tells the database it is still running (see
/// `dispatcher::recover_orphans`).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// A running session's watch: registered with the node for cancels, polling the database for
/// a cancel made elsewhere, and writing the call's heartbeat; all undone when the session
/// ends, however it ends.
struct SessionWatch {
    signal: Arc<tokio::sync::Notify>,
    poll: tokio::task::JoinHandle<()>,
    runtime: Arc<runtime::CallRuntime>,
    call_id: Id,
}

impl SessionWatch {
    fn start(state: &AppState, call_id: &Id) -> SessionWatch {
        let signal = state.calls.hang_up_signal(call_id);
        let poll = tokio::spawn({
            let db = state.db.clone();
            let clock = state.clock.clone();
            let call_id = call_id.clone();
            let signal = signal.clone();
            async move {
                let mut last_heartbeat: Option<Instant> = None;
                loop {
                    if last_heartbeat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
                        last_heartbeat = Some(Instant::now());
                        if let Err(error) = crate::store::call_sessions::heartbeat(&db, &call_id, clock.now()).await {
                            tracing::warn!(call = %call_id, %error, "cannot write the call's heartbeat");
                        }
                    }
                    tokio::time::sleep(CANCEL_POLL).await;
                    if matches!(calls::is_cancelled(&db, &call_id).await, Ok(true)) {
                        signal.notify_one();
                        return;
                    }
                }
            }
        });
        SessionWatch { signal, poll, runtime: state.calls.clone(), call_id: call_id.clone() }
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        self.poll.abort();
        self.runtime.forget_hang_up(&self.call_id);
    }
}

/// Runs a call whose media has started on `transport`.
async fn run<T: MediaTransport>(state: AppState, engine: Arc<SpeechEngine>, setup: CallSetup, transport: T) {
    let call_id = setup.call.id.clone();
    let account_id = setup.account_id.clone();
    if let Err(error) = driver::run_call(&state, engine, setup, transport).await {
        tracing::error!(call = %call_id, %error, "call session failed");
        // The call must not stay in progress forever: it ends as failed, with the reason.
        // (A no-op when the failure came after the call was already stored.)
        let notes = format!("The call failed on the gateway: {error}.");
        if let Err(error) =
            dispatcher::finish_without_audio(&state, &account_id, &call_id, CallStatus::Failed, Outcome::Failed, notes)
                .await
        {
            tracing::error!(call = %call_id, %error, "cannot store the failed call");
        }
    }
}
