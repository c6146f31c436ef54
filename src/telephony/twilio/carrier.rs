//! Twilio as a `Carrier`: a placed call is a `POST .../Calls.json` whose `Url` is our
//! `/twilio/voice?callId=` (TwiML connecting the Media Stream once answered) and whose
//! `StatusCallback` is our `/twilio/status?callId=`; a hang-up sets the call's `Status`.

use futures::future::BoxFuture;

use super::rest::{CreateCall, TwilioRest};
use crate::app::AppState;
use crate::store::calls::Call;
use crate::telephony::carrier::{Carrier, CarrierError};

/// Seconds Twilio lets a placed call ring before reporting `no-answer`.
const RING_TIMEOUT_SECS: u32 = 30;

#[derive(Debug, Clone)]
pub struct TwilioCarrier {
    pub rest: TwilioRest,
    /// `From` when the call has no `callerId`.
    pub default_caller_id: Option<String>,
}

impl Carrier for TwilioCarrier {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn place<'a>(&'a self, state: &'a AppState, call: &'a Call) -> BoxFuture<'a, Result<Option<String>, CarrierError>> {
        Box::pin(async move {
            let from = call.caller_id.clone().or_else(|| self.default_caller_id.clone()).ok_or_else(|| {
                CarrierError("the call has no callerId and no default Twilio caller id is configured".into())
            })?;
            let base = state.config.public_base_url();
            let request = CreateCall {
                to: call.phone.clone(),
                from,
                url: format!("{base}/twilio/voice?callId={}", call.id),
                status_callback: format!("{base}/twilio/status?callId={}", call.id),
                machine_detection: None,
                timeout_secs: RING_TIMEOUT_SECS,
            };
            let created = self.rest.create_call(&request).await.map_err(|e| CarrierError(e.to_string()))?;
            Ok(Some(created.sid))
        })
    }

    fn hang_up<'a>(&'a self, carrier_call_id: &'a str, answered: bool) -> BoxFuture<'a, Result<(), CarrierError>> {
        Box::pin(async move {
            // Twilio: `canceled` ends a queued or ringing call, `completed` an answered one.
            let status = if answered { "completed" } else { "canceled" };
            self.rest.update_status(carrier_call_id, status).await.map(|_| ()).map_err(|e| CarrierError(e.to_string()))
        })
    }
}
