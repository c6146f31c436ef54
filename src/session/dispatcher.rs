//! Places calls: queued calls and scheduled calls whose time has come move to `ringing` and
//! go to a carrier, as many at once as this node has free call slots. Several nodes may run
//! a dispatcher on one database: the `queued -> ringing` compare-and-set decides which node
//! places each call.

use std::time::Duration;

use crate::app::AppState;
use crate::domain::Id;
use crate::domain::status::{CallStatus, Outcome};
use crate::store::call_sessions::{self, Artifacts};
use crate::store::calls::{self, Call, CallEnd};
use crate::telephony::carrier::CarrierStatus;

/// How often due calls are looked for when nothing wakes the dispatcher (scheduled calls
/// become due on their own).
const POLL: Duration = Duration::from_secs(1);

pub async fn run(state: AppState) {
    loop {
        tokio::select! {
            _ = state.calls.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(error) = dispatch_due(&state).await {
            tracing::warn!(%error, "dispatcher pass failed");
        }
    }
}

async fn dispatch_due(state: &AppState) -> Result<(), crate::store::StoreError> {
    let free = state.calls.free_slots();
    if free == 0 {
        return Ok(());
    }
    for due in calls::due(&state.db, state.clock.now(), free as i64).await? {
        if !state.calls.try_hold(&due.id) {
            break;
        }
        if !calls::transition(&state.db, &due.account_id, &due.id, due.status, CallStatus::Ringing).await? {
            // Cancelled, or another node took it.
            state.calls.release(&due.id);
            continue;
        }
        let Some(call) = calls::get(&state.db, &due.account_id, &due.id).await? else {
            state.calls.release(&due.id);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let id = call.id.clone();
            if let Err(error) = place(&state, call).await {
                tracing::warn!(call = %id, %error, "placing a call failed");
            }
        });
    }
    Ok(())
}

/// Sends a ringing call to the carrier its number belongs to.
async fn place(state: &AppState, call: Call) -> Result<(), crate::store::StoreError> {
    prewarm_while_ringing(state, &call);
    let Some(carrier) = state.calls.carrier_for(&call.phone) else {
        let reason = format!(
            "no carrier can reach {}: configure Twilio (--twilio-account-sid, --twilio-auth-token) \
             or dial a simulator number (+15550100001 to +15550100008)",
            call.phone
        );
        return end_unanswered(state, &call, CarrierStatus::Failed { reason }).await;
    };
    call_sessions::open_leg(&state.db, &call.account_id, &call.id, carrier.name(), state.clock.now()).await?;
    match carrier.place(state, &call).await {
        Ok(Some(carrier_call_id)) => {
            call_sessions::set_carrier_call_id(&state.db, &call.id, &carrier_call_id, state.clock.now()).await
        }
        Ok(None) => Ok(()),
        Err(error) => end_unanswered(state, &call, CarrierStatus::Failed { reason: error.to_string() }).await,
    }
}

/// Synthesizes the call's lines while it rings (seconds, usually), loading the models first
/// if this node has not yet.
fn prewarm_while_ringing(state: &AppState, call: &Call) {
    let state = state.clone();
    let call = call.clone();
    tokio::spawn(async move {
        let id = call.id.clone();
        let account_id = call.account_id.clone();
        let Ok(setup) = super::setup::load(&state, &account_id, call).await else { return };
        match state.calls.speech().await {
            Ok(engine) => super::setup::prewarm(&engine, &id, &setup.lines()),
            Err(error) => tracing::warn!(call = %id, %error, "cannot load the speech models"),
        }
    });
}

/// Ends a call that was never answered, with the status and outcome the carrier's report
/// means, and frees its slot.
pub async fn end_unanswered(
    state: &AppState,
    call: &Call,
    report: CarrierStatus,
) -> Result<(), crate::store::StoreError> {
    let (status, outcome, notes) = report.unanswered_end().unwrap_or((
        CallStatus::Failed,
        Outcome::Failed,
        "The call ended before it was answered.".to_owned(),
    ));
    finish_without_audio(state, &call.account_id, &call.id, status, outcome, notes).await
}

pub async fn finish_without_audio(
    state: &AppState,
    account_id: &Id,
    call_id: &Id,
    status: CallStatus,
    outcome: Outcome,
    notes: String,
) -> Result<(), crate::store::StoreError> {
    let end = CallEnd {
        status,
        outcome,
        notes: Some(notes),
        ended_at: state.clock.now(),
        duration: None,
        recording_url: None,
        transcript_url: None,
    };
    let result = calls::finish(&state.db, account_id, call_id, end, Artifacts::default()).await;
    state.calls.release(call_id);
    state.relay.wake();
    result.map(|_| ())
}
