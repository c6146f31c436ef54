//! The carrier seam: a `Carrier` places and hangs up call legs; what a carrier tells us about
//! a leg arrives as a `CarrierStatus`, one vocabulary whatever the carrier (Twilio's status
//! callbacks, the simulator's events), and maps onto the call's status and outcome. An
//! answered leg reaches us as a media stream (Twilio Media Streams today; SIP/RTP later),
//! which a session takes over.

use futures::future::BoxFuture;

use crate::app::AppState;
use crate::domain::status::{CallStatus, Outcome};
use crate::store::calls::Call;

/// A carrier's failure to place or end a leg, in words fit for the call's notes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CarrierError(pub String);

/// A way to reach phones. Implementations: the simulator (numbers +15550100001..11, answered
/// by virtual callees on this node) and Twilio's REST API.
pub trait Carrier: Send + Sync {
    /// The name stored on the call's leg (`simulator`, `twilio`).
    fn name(&self) -> &'static str;

    /// Starts ringing `call` (already `ringing`, its leg opened). Returns the carrier's id
    /// for the leg when it has one. The answer arrives later as a media stream; an unanswered
    /// end as a `CarrierStatus` through `dispatcher::end_unanswered`.
    fn place<'a>(&'a self, state: &'a AppState, call: &'a Call) -> BoxFuture<'a, Result<Option<String>, CarrierError>>;

    /// Ends the leg `carrier_call_id`: a ringing one (`answered: false`) or a connected one.
    fn hang_up<'a>(&'a self, carrier_call_id: &'a str, answered: bool) -> BoxFuture<'a, Result<(), CarrierError>>;
}

/// A carrier's report about a call leg (Twilio's `CallStatus` values, the simulator's
/// events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CarrierStatus {
    /// Accepted by the carrier, not yet ringing (`queued`, `initiated`).
    Initiated,
    Ringing,
    /// The callee picked up; `answered_by` is the carrier's machine detection verdict
    /// (`human`, `machine_start`, `fax`, `unknown`, ...) when it ran.
    Answered {
        answered_by: Option<String>,
    },
    /// The call ended after being answered; `duration_secs` as the carrier counted it.
    Completed {
        duration_secs: Option<i64>,
    },
    Busy,
    NoAnswer,
    /// The carrier could not place or keep the call.
    Failed {
        reason: String,
    },
    /// Ended before it was answered, by us (a cancel) or the carrier.
    Canceled,
}

impl CarrierStatus {
    /// Twilio's status callback `CallStatus` (with `CallDuration` and `AnsweredBy`), as
    /// documented for the Call resource; `None` for a value Twilio may add later.
    pub fn from_twilio(call_status: &str, duration_secs: Option<i64>, answered_by: Option<&str>) -> Option<Self> {
        Some(match call_status {
            "queued" | "initiated" => CarrierStatus::Initiated,
            "ringing" => CarrierStatus::Ringing,
            "in-progress" | "answered" => CarrierStatus::Answered { answered_by: answered_by.map(str::to_owned) },
            "completed" => CarrierStatus::Completed { duration_secs },
            "busy" => CarrierStatus::Busy,
            "no-answer" => CarrierStatus::NoAnswer,
            "failed" => CarrierStatus::Failed { reason: "the carrier could not connect the call".into() },
            "canceled" => CarrierStatus::Canceled,
            _ => return None,
        })
    }

    /// The final status and outcome of a call that ends on this report *before* it was
    /// answered; `None` for reports that do not end an unanswered call.
    pub fn unanswered_end(&self) -> Option<(CallStatus, Outcome, String)> {
        match self {
            CarrierStatus::Busy => Some((CallStatus::Failed, Outcome::Busy, "The line was busy.".into())),
            CarrierStatus::NoAnswer => {
                Some((CallStatus::Failed, Outcome::NoAnswer, "Nobody answered the call.".into()))
            }
            CarrierStatus::Failed { reason } => {
                Some((CallStatus::Failed, Outcome::Failed, format!("The call could not be placed: {reason}.")))
            }
            CarrierStatus::Canceled => Some((CallStatus::Cancelled, Outcome::Failed, "The call was cancelled.".into())),
            // Completed without ever being answered on our side: the callee hung up as the
            // stream was set up, or the carrier reports a completed leg we never bridged.
            CarrierStatus::Completed { .. } => {
                Some((CallStatus::Failed, Outcome::Failed, "The call ended before its audio connected.".into()))
            }
            CarrierStatus::Initiated | CarrierStatus::Ringing | CarrierStatus::Answered { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_documented_twilio_call_status() {
        let cases = [
            ("queued", CarrierStatus::Initiated),
            ("initiated", CarrierStatus::Initiated),
            ("ringing", CarrierStatus::Ringing),
            ("in-progress", CarrierStatus::Answered { answered_by: Some("human".into()) }),
            ("completed", CarrierStatus::Completed { duration_secs: Some(42) }),
            ("busy", CarrierStatus::Busy),
            ("no-answer", CarrierStatus::NoAnswer),
            ("canceled", CarrierStatus::Canceled),
        ];
        for (twilio, expected) in cases {
            assert_eq!(CarrierStatus::from_twilio(twilio, Some(42), Some("human")), Some(expected), "{twilio}");
        }
        assert!(matches!(CarrierStatus::from_twilio("failed", None, None), Some(CarrierStatus::Failed { .. })));
        assert_eq!(CarrierStatus::from_twilio("teleported", None, None), None);
    }

    #[test]
    fn unanswered_ends_carry_the_outcome_the_api_reports() {
        assert_eq!(CarrierStatus::Busy.unanswered_end().map(|e| e.1), Some(Outcome::Busy));
        assert_eq!(CarrierStatus::NoAnswer.unanswered_end().map(|e| e.1), Some(Outcome::NoAnswer));
        assert_eq!(CarrierStatus::Canceled.unanswered_end().map(|e| e.0), Some(CallStatus::Cancelled));
        assert_eq!(CarrierStatus::Ringing.unanswered_end(), None);
    }
}
