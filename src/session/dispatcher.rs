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

/// How often orphaned calls are looked for.
const ORPHAN_SWEEP: Duration = Duration::from_secs(30);
/// A session writes its heartbeat every `session::HEARTBEAT`; this much silence means the
/// process running it is gone.
const SILENT_AFTER_SECS: i64 = 60;
/// Longer than any carrier lets a call ring (Twilio: `Timeout` 30 s, 600 s at most) before
/// reporting on it, plus margin.
const RINGING_AFTER_SECS: i64 = 15 * 60;

pub async fn run(state: AppState) {
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = state.calls.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(error) = dispatch_due(&state).await {
            tracing::warn!(%error, "dispatcher pass failed");
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= ORPHAN_SWEEP) {
            last_sweep = Some(tokio::time::Instant::now());
            match recover_orphans(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(calls = n, "closed calls whose gateway process had stopped"),
                Err(error) => tracing::warn!(%error, "orphaned-call sweep failed"),
            }
        }
    }
}

/// Closes live calls that no running process owns any more (a gateway node died mid-call or
/// mid-ring), as `failed`, keeping the transcript saved turn by turn and the recording (its
/// header is rewritten every second, so the file is valid up to then) when this node has the
/// file. Returns how many calls it closed.
pub async fn recover_orphans(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let now = state.clock.now();
    let orphans =
        calls::orphaned(&state.db, now.plus_seconds(-SILENT_AFTER_SECS), now.plus_seconds(-RINGING_AFTER_SECS), 100)
            .await?;
    let mut closed = 0;
    for orphan in orphans {
        // A session alive on this node is no orphan, whatever its heartbeat says (a write
        // that lagged behind a busy database).
        if state.calls.runs_here(&orphan.id) {
            continue;
        }
        let Some(call) = calls::get(&state.db, &orphan.account_id, &orphan.id).await? else { continue };
        if call.status == CallStatus::Ringing {
            let reason = "neither the carrier nor the gateway reported on the ringing call".to_owned();
            end_unanswered(state, &call, CarrierStatus::Failed { reason }).await?;
            closed += 1;
            continue;
        }
        let relative = std::path::PathBuf::from("recordings").join(format!("{}.wav", call.id));
        let recording = recording_file(&state.config.store.data_dir.join(&relative)).map(|(bytes, duration_ms)| {
            call_sessions::RecordingFile { path: relative.to_string_lossy().into_owned(), bytes, duration_ms }
        });
        let has_transcript = call_sessions::transcript(&state.db, &call.account_id, &call.id).await?.is_some();
        let base = state.config.public_base_url();
        let end = CallEnd {
            status: CallStatus::Failed,
            outcome: Outcome::Failed,
            notes: Some(
                "The gateway process running the call stopped; the transcript and recording up to then are kept."
                    .to_owned(),
            ),
            ended_at: now,
            duration: recording.as_ref().map(|r| r.duration_ms / 1000),
            recording_url: recording.as_ref().map(|_| format!("{base}/v1/calls/{}/recording", call.id)),
            transcript_url: has_transcript.then(|| format!("{base}/v1/calls/{}/transcript", call.id)),
            callback_at: None,
        };
        let artifacts = Artifacts { transcript: None, recording };
        if calls::finish(&state.db, &call.account_id, &call.id, end, artifacts).await?.is_some() {
            closed += 1;
        }
        state.calls.release(&call.id);
    }
    if closed > 0 {
        state.relay.wake();
    }
    Ok(closed)
}

/// Size and duration of a recording left by a stopped session, if it is a readable WAV.
fn recording_file(path: &std::path::Path) -> Option<(i64, i64)> {
    let reader = hound::WavReader::open(path).ok()?;
    let spec = reader.spec();
    let duration_ms = i64::from(reader.duration()) * 1000 / i64::from(spec.sample_rate.max(1));
    let bytes = std::fs::metadata(path).ok()?.len() as i64;
    Some((bytes, duration_ms))
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
    let carrier = match state.calls.carrier_for(state, &call.account_id, &call.phone).await {
        Ok(carrier) => carrier,
        Err(error) => {
            let reason = format!("the account's carrier cannot be used: {error}");
            return end_unanswered(state, &call, CarrierStatus::Failed { reason }).await;
        }
    };
    let Some((carrier, carrier_id)) = carrier else {
        let reason = format!(
            "no carrier can reach {}: configure Twilio (--twilio-account-sid, --twilio-auth-token) \
             or add the account's own with POST /v1/carriers, \
             or dial a simulator number (+15550100001 to +15550100011)",
            call.phone
        );
        return end_unanswered(state, &call, CarrierStatus::Failed { reason }).await;
    };
    call_sessions::open_leg(
        &state.db,
        &call.account_id,
        &call.id,
        carrier.name(),
        carrier_id.as_ref(),
        state.clock.now(),
    )
    .await?;
    match carrier.place(state, &call).await {
        Ok(Some(carrier_call_id)) => {
            call_sessions::set_carrier_call_id(&state.db, &call.id, &carrier_call_id, state.clock.now()).await?;
            // Cancelled while the carrier was being asked: the cancel found no leg to end yet.
            if calls::is_cancelled(&state.db, &call.id).await?
                && let Err(error) = carrier.hang_up(&carrier_call_id, false).await
            {
                tracing::warn!(call = %call.id, %error, "the carrier did not take the hang-up");
            }
            Ok(())
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
        callback_at: None,
    };
    metrics::counter!("calls_ended_total", "status" => status.as_str(), "outcome" => outcome.as_str()).increment(1);
    let result = calls::finish(&state.db, account_id, call_id, end, Artifacts::default()).await;
    state.calls.release(call_id);
    state.relay.wake();
    result.map(|_| ())
}
