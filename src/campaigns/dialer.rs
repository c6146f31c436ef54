//! The dialer task. Each pass (every second, or at once when woken) looks at every live
//! campaign:
//! - a `scheduled` campaign with a schedule becomes `active` when its `startDate` comes (one
//!   without a schedule waits for `POST /campaigns/{id}/status`);
//! - an `active` campaign is dialed by the one node holding its lease (taken or renewed each
//!   pass, lost 15 s after a node stops): contacts whose call ended are settled (done, or back
//!   in line for a retry or the callback they asked for), then, inside the calling window, new calls are queued for due
//!   contacts up to `maxConcurrentCalls` under way, and the dispatcher places them as it does
//!   any call (under the gateway's own line limit);
//! - a campaign with nobody left to call and nothing under way, or past its `endDate`, is
//!   `completed` (webhook `campaign.completed`); one created with no contacts waits for the API.
//!
//! Crash safety: a call and its contact's `calling` mark commit together, and every change is
//! conditional on the state it was decided from, so a pass that dies half-way, or a node that
//! lost its lease, leaves nothing called twice or lost; the next pass carries on.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::Notify;

use super::plan::{self, AfterCall, Window};
use crate::app::AppState;
use crate::domain::status::{CallDirection, CallStatus, CampaignStatus};
use crate::domain::{Id, Phone};
use crate::store::calls::NewCall;
use crate::store::campaigns::{self, Campaign, Transition};
use crate::store::{StoreError, campaign_dialing, contacts, templates};

const POLL: Duration = Duration::from_secs(1);
/// How long a node's claim on a campaign lasts without renewal.
const LEASE_SECS: i64 = 15;

/// This node's dialer: its name in leases and its wake-up.
#[derive(Debug)]
pub struct Dialer {
    /// Names this process in `campaigns.dialer_node`.
    pub node: String,
    /// Wakes the dialer (a campaign was activated).
    pub wake: Notify,
}

impl Default for Dialer {
    fn default() -> Self {
        Dialer { node: Id::generate().to_string(), wake: Notify::new() }
    }
}

pub async fn run(state: AppState) {
    loop {
        tokio::select! {
            _ = state.dialer.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(error) = dial_pass(&state).await {
            tracing::warn!(%error, "campaign dialer pass failed");
        }
    }
}

/// One pass over every live campaign; a campaign that fails is logged and the others go on.
pub async fn dial_pass(state: &AppState) -> Result<(), StoreError> {
    for (account_id, campaign) in campaign_dialing::live_campaigns(&state.db).await? {
        let id = campaign.id.clone();
        if let Err(error) = dial_campaign(state, &account_id, campaign).await {
            tracing::warn!(campaign = %id, %error, "cannot dial the campaign");
        }
    }
    Ok(())
}

async fn dial_campaign(state: &AppState, account_id: &Id, campaign: Campaign) -> Result<(), StoreError> {
    let db = &state.db;
    let now = state.clock.now();
    let window = plan::window_at(campaign.schedule.as_ref(), now);
    if campaign.status == CampaignStatus::Scheduled {
        if campaign.schedule.is_none() || window == Window::NotYet {
            return Ok(());
        }
        // Another node may have started it a moment ago: that is as good.
        if campaigns::transition(db, account_id, &campaign.id, CampaignStatus::Active).await? == Transition::Done {
            tracing::info!(campaign = %campaign.id, "campaign started on schedule");
            state.relay.wake();
        }
    }
    if !campaign_dialing::claim(db, &campaign.id, &state.dialer.node, now, now.plus_seconds(LEASE_SECS)).await? {
        return Ok(());
    }

    let retry = &campaign.call_settings.retry_settings;
    for calling in campaign_dialing::calling(db, &campaign.id).await? {
        let after = match calling.call_status {
            // The call row is gone: nothing to wait for.
            None => AfterCall::Done,
            Some(status) if plan::has_ended(status) => plan::after_call(
                status,
                calling.outcome,
                calling.callback_at,
                calling.attempts,
                calling.ended_at.unwrap_or(now),
                retry,
            ),
            Some(_) => continue,
        };
        let retry_at = match after {
            AfterCall::Done => None,
            AfterCall::RetryAt(at) => Some(at),
        };
        campaign_dialing::settle(db, &campaign.id, &calling.contact_id, &calling.call_id, retry_at).await?;
    }

    let (in_flight, pending) = campaign_dialing::counts(db, &campaign.id).await?;
    if plan::is_complete(campaign.total_contacts, in_flight, pending, window) {
        if campaigns::transition(db, account_id, &campaign.id, CampaignStatus::Completed).await? == Transition::Done {
            tracing::info!(campaign = %campaign.id, "campaign completed");
            state.relay.wake();
        }
        return Ok(());
    }
    let slots = plan::free_slots(campaign.call_settings.max_concurrent_calls, in_flight);
    if window != Window::Open || slots == 0 || pending == 0 {
        return Ok(());
    }
    let due = campaign_dialing::due(db, &campaign.id, now, slots).await?;
    if due.is_empty() {
        return Ok(());
    }
    let Some(template) = templates::load_script(db, account_id, &campaign.template_id).await? else {
        // Templates in use by a live campaign cannot be deleted; this is a store gone wrong.
        return Err(StoreError::Corrupt(format!("campaign {} has no template", campaign.id)));
    };
    let caller_id = campaign.call_settings.caller_id.as_deref().and_then(|p| Phone::parse(p).ok());
    let mut started = 0;
    for (contact_id, attempts) in due {
        let contact = contacts::get(db, account_id, &contact_id).await?;
        let Some(contact) = contact.filter(|c| !c.do_not_call) else {
            // Deleted, or asked not to be called (perhaps by another campaign's call).
            campaign_dialing::skip(db, &campaign.id, &contact_id).await?;
            continue;
        };
        let mut variables = BTreeMap::new();
        template.fill_from_contact(&contact, &mut variables);
        let new = NewCall {
            status: CallStatus::Queued,
            direction: CallDirection::Outbound,
            phone: Phone::from_trusted(contact.phone.clone(), contact.phone_valid),
            contact_id: Some(contact_id.clone()),
            template_id: Some(template.id.clone()),
            campaign_id: Some(campaign.id.clone()),
            variables,
            scheduled_at: None,
            caller_id: caller_id.clone(),
        };
        let now = state.clock.now();
        if campaign_dialing::start_call(db, account_id, &campaign.id, &contact_id, attempts, new, now).await?.is_some()
        {
            started += 1;
        }
    }
    if started > 0 {
        tracing::debug!(campaign = %campaign.id, calls = started, "campaign calls queued");
        state.calls.wake.notify_one();
    }
    Ok(())
}
