//! What the node keeps for running calls: the speech models (loaded on first use, so a
//! server that never places a call never pays for them), the concurrency limit, the
//! dispatcher's wake-up, and the carriers: the simulator and the Twilio accounts (the
//! default one and the accounts' own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::config::TelephonyConfig;
use crate::domain::Id;
use crate::speech::engine::SpeechEngine;
use crate::speech::{ModelPaths, SpeechError, SttModel};
use crate::telephony::carrier::Carrier;
use crate::telephony::simulator::callee::SimulatorCarrier;
use crate::telephony::twilio::accounts::{LineError, TwilioAccounts};

pub struct CallRuntime {
    speech: OnceCell<Arc<SpeechEngine>>,
    models: ModelPaths,
    stt_model: SttModel,
    slots: Arc<Semaphore>,
    /// Slots held by calls in progress on this node, released when each call ends.
    held: Mutex<HashMap<Id, OwnedSemaphorePermit>>,
    /// Hang-up signals of the sessions running on this node (a cancel through the API).
    hang_ups: Mutex<HashMap<Id, Arc<Notify>>>,
    /// Wakes the dispatcher (a call was created or a slot freed).
    pub wake: Notify,
    simulator: Arc<SimulatorCarrier>,
    pub twilio: TwilioAccounts,
    /// Media streams connected but not yet admitted (no valid `start` yet): anyone on the
    /// internet can open one, so they are capped.
    pub unadmitted_streams: Arc<StreamGate>,
    /// Where this node answers SIP, once its user agent is bound (`--sip-listen`).
    pub sip_address: std::sync::OnceLock<std::net::SocketAddr>,
}

/// Media streams that may wait for their `start` at once; a real stream sends it within
/// milliseconds, so this only bites a flood of sockets that never do.
pub const UNADMITTED_STREAMS: usize = 64;
/// The same, from one peer address (a proxy in front counts as one peer).
pub const UNADMITTED_STREAMS_PER_PEER: usize = 16;

/// Caps streams waiting for their `start`, in all and per peer address.
#[derive(Debug)]
pub struct StreamGate {
    all: Arc<Semaphore>,
    per_peer: Mutex<HashMap<std::net::IpAddr, usize>>,
}

/// A place among the waiting streams, given back when dropped.
#[derive(Debug)]
pub struct StreamPass {
    gate: Arc<StreamGate>,
    peer: Option<std::net::IpAddr>,
    _place: OwnedSemaphorePermit,
}

impl StreamGate {
    pub fn new() -> StreamGate {
        StreamGate { all: Arc::new(Semaphore::new(UNADMITTED_STREAMS)), per_peer: Mutex::new(HashMap::new()) }
    }

    /// A place for one more waiting stream from `peer`, if both caps allow it.
    pub fn enter(self: &Arc<Self>, peer: Option<std::net::IpAddr>) -> Option<StreamPass> {
        let place = self.all.clone().try_acquire_owned().ok()?;
        if let Some(ip) = peer {
            let mut per_peer = self.per_peer.lock().unwrap_or_else(|e| e.into_inner());
            let waiting = per_peer.entry(ip).or_insert(0);
            if *waiting >= UNADMITTED_STREAMS_PER_PEER {
                return None;
            }
            *waiting += 1;
        }
        Some(StreamPass { gate: self.clone(), peer, _place: place })
    }
}

impl Default for StreamGate {
    fn default() -> Self {
        StreamGate::new()
    }
}

impl Drop for StreamPass {
    fn drop(&mut self) {
        let Some(ip) = self.peer else { return };
        let mut per_peer = self.gate.per_peer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(waiting) = per_peer.get_mut(&ip) {
            *waiting -= 1;
            if *waiting == 0 {
                per_peer.remove(&ip);
            }
        }
    }
}

impl std::fmt::Debug for CallRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRuntime").field("free_slots", &self.slots.available_permits()).finish_non_exhaustive()
    }
}

impl CallRuntime {
    pub fn new(config: &TelephonyConfig) -> CallRuntime {
        CallRuntime {
            speech: OnceCell::new(),
            models: ModelPaths::new(&config.models_dir),
            stt_model: config.stt_model,
            slots: Arc::new(Semaphore::new(config.max_concurrent_calls)),
            held: Mutex::new(HashMap::new()),
            hang_ups: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            simulator: Arc::new(SimulatorCarrier),
            twilio: TwilioAccounts::new(config),
            unadmitted_streams: Arc::new(StreamGate::new()),
            sip_address: std::sync::OnceLock::new(),
        }
    }

    /// The carrier that places `account_id`'s call to `phone`: the simulator for its numbers,
    /// else the account's Twilio account (its own, or the gateway's default). The second value
    /// is the account's carrier id (`None`: simulator or default), kept on the leg.
    pub async fn carrier_for(
        &self,
        state: &crate::app::AppState,
        account_id: &Id,
        phone: &str,
    ) -> Result<Option<(Arc<dyn Carrier>, Option<Id>)>, LineError> {
        if SimulatorCarrier::reaches(phone) {
            return Ok(Some((self.simulator.clone(), None)));
        }
        let line = self.twilio.for_account(state, account_id).await?;
        Ok(line.map(|l| (l.carrier as Arc<dyn Carrier>, l.carrier_id)))
    }

    /// The carrier a call's leg was placed on (its stored name and carrier id).
    pub async fn carrier_of_leg(
        &self,
        state: &crate::app::AppState,
        name: &str,
        carrier_id: Option<&Id>,
    ) -> Result<Option<Arc<dyn Carrier>>, LineError> {
        Ok(match name {
            "simulator" => Some(self.simulator.clone()),
            "twilio" => self.twilio.by_carrier(state, carrier_id).await?.map(|l| l.carrier as Arc<dyn Carrier>),
            _ => None,
        })
    }

    /// The speech models, loaded once on a blocking thread the first time a call needs them.
    pub async fn speech(&self) -> Result<Arc<SpeechEngine>, SpeechError> {
        self.speech
            .get_or_try_init(|| async {
                let (models, stt_model) = (self.models.clone(), self.stt_model);
                let engine = tokio::task::spawn_blocking(move || SpeechEngine::load(&models, stt_model))
                    .await
                    .map_err(|e| SpeechError::Onnx(format!("loading the models panicked: {e}")))??;
                Ok(Arc::new(engine))
            })
            .await
            .cloned()
    }

    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Takes a slot for `call` if one is free.
    pub fn try_hold(&self, call: &Id) -> bool {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                held.insert(call.clone(), permit);
                metrics::gauge!("calls_active").set(held.len() as f64);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives `call`'s slot back (idempotent) and wakes the dispatcher.
    pub fn release(&self, call: &Id) {
        let released = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let released = held.remove(call).is_some();
            metrics::gauge!("calls_active").set(held.len() as f64);
            released
        };
        if released {
            self.wake.notify_one();
        }
    }

    /// Registers a session's hang-up signal; the session calls `forget_hang_up` as it ends.
    pub fn hang_up_signal(&self, call: &Id) -> Arc<Notify> {
        let signal = Arc::new(Notify::new());
        self.hang_ups.lock().unwrap_or_else(|e| e.into_inner()).insert(call.clone(), signal.clone());
        signal
    }

    pub fn forget_hang_up(&self, call: &Id) {
        self.hang_ups.lock().unwrap_or_else(|e| e.into_inner()).remove(call);
    }

    /// Tells `call`'s session to hang up, if it runs on this node (a session on another
    /// node finds the cancellation in the database on its own).
    pub fn request_hang_up(&self, call: &Id) -> bool {
        match self.hang_ups.lock().unwrap_or_else(|e| e.into_inner()).get(call) {
            Some(signal) => {
                // A stored permit: the signal is not lost if the session is not waiting yet.
                signal.notify_one();
                true
            }
            None => false,
        }
    }

    /// Whether `call`'s session runs on this node now.
    pub fn runs_here(&self, call: &Id) -> bool {
        self.hang_ups.lock().unwrap_or_else(|e| e.into_inner()).contains_key(call)
    }

    /// Calls holding a slot on this node.
    pub fn active(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
