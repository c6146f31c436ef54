//! Inbound calls: a call to one of an account's numbers becomes a call record running the
//! number's template.

use std::collections::BTreeMap;

use super::legs::Via;
use crate::app::AppState;
use crate::domain::Phone;
use crate::domain::status::{CallDirection, CallStatus};
use crate::store::calls::{self, Call, NewCall};
use crate::store::{StoreResult, call_sessions, phone_numbers};

/// Creates the call record for a call from `from` to our number `to`, ringing, on the carrier
/// account `via`; `None` when `to` is not a number registered on that carrier account (or is
/// not a phone number at all): a Twilio account cannot ring another's numbers.
pub async fn create_inbound_call(state: &AppState, via: Via<'_>, to: &str, from: &str) -> StoreResult<Option<Call>> {
    let Ok(to) = Phone::parse(to) else { return Ok(None) };
    let route = match via.carrier {
        "twilio" => phone_numbers::twilio_route(via.carrier_id, &to),
        "sip" => phone_numbers::sip_route(&to),
        _ => return Ok(None),
    };
    let Some((account_id, number)) = phone_numbers::find_by_route(&state.db, &route).await? else {
        return Ok(None);
    };
    // A withheld or malformed caller id still gets answered; the record keeps what came.
    let caller = Phone::parse(from).unwrap_or_else(|_| to.clone());
    let variables: BTreeMap<String, String> = number.variables.clone();
    let new = NewCall {
        status: CallStatus::Ringing,
        direction: CallDirection::Inbound,
        phone: caller,
        contact_id: None,
        template_id: Some(number.template_id.clone()),
        campaign_id: None,
        variables,
        scheduled_at: None,
        caller_id: Some(to),
    };
    let call = calls::create(&state.db, &account_id, new).await?;
    call_sessions::open_leg(&state.db, &account_id, &call.id, via.carrier, via.carrier_id, state.clock.now()).await?;
    // The call's slot is taken by the carrier's door (`legs::inbound_call`), which answers
    // busy when there is none.
    Ok(Some(call))
}
