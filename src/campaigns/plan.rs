//! The dialer's decisions, without I/O: whether a campaign's schedule lets it call now, what
//! becomes of a contact once its call has ended, how many calls may start, and when a campaign
//! is over. The dialer task (`super::dialer`) reads the rows, asks these, and writes the answers.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use crate::domain::Timestamp;
use crate::domain::schedule::{Schedule, parse_hhmm};
use crate::domain::status::{CallStatus, Outcome};
use crate::store::campaigns::RetrySettings;

/// Where `now` falls in a campaign's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Before `startDate`.
    NotYet,
    /// Inside calling hours on a calling day, within the date window.
    Open,
    /// Between calling hours, or on a day without calls.
    Closed,
    /// At or after `endDate`: no new call will start.
    Over,
}

/// The window of `schedule` at `now`; no schedule means always open. Days and hours are read
/// on the wall clock of the schedule's time zone (DST included), `callHours.end` excluded.
/// A schedule whose zone or hours no longer parse (they were validated at creation) is closed
/// rather than dialing at the wrong hour.
pub fn window_at(schedule: Option<&Schedule>, now: Timestamp) -> Window {
    let Some(schedule) = schedule else { return Window::Open };
    if now < schedule.start_date {
        return Window::NotYet;
    }
    if schedule.end_date.is_some_and(|end| now >= end) {
        return Window::Over;
    }
    let (Ok(zone), Some(start), Some(end)) = (
        TimeZone::get(&schedule.time_zone),
        parse_hhmm(&schedule.call_hours.start),
        parse_hhmm(&schedule.call_hours.end),
    ) else {
        return Window::Closed;
    };
    let local = now.as_jiff().to_zoned(zone);
    let day = iso_day(local.weekday());
    let time = local.time();
    if schedule.days_of_week.contains(&day) && start <= time && time < end { Window::Open } else { Window::Closed }
}

/// 1 = Monday ... 7 = Sunday, as `daysOfWeek` counts.
fn iso_day(weekday: Weekday) -> u8 {
    weekday.to_monday_one_offset() as u8
}

/// What happens to a contact after one of its campaign calls ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterCall {
    /// The contact is done with: reached (whatever they said), cancelled, or out of attempts.
    Done,
    /// Dial again at this time.
    RetryAt(Timestamp),
}

/// Reached is reached: a call that connected is not repeated, whatever its outcome (a
/// `voicemail` call has left the template's message), except that a callee who asked to be
/// called back at a time (`callback_at`) is called then. A call that did not connect (busy,
/// no answer, a carrier failure) is tried again `retryInterval` minutes after it ended. Both
/// only while `attempts` (this one included) is below `maxAttempts`. A cancelled call is not
/// retried: someone stopped it on purpose.
pub fn after_call(
    status: CallStatus,
    outcome: Option<Outcome>,
    callback_at: Option<Timestamp>,
    attempts: i64,
    ended_at: Timestamp,
    retry: &RetrySettings,
) -> AfterCall {
    if attempts >= retry.max_attempts {
        return AfterCall::Done;
    }
    let unreached = status == CallStatus::Failed
        && matches!(outcome, None | Some(Outcome::NoAnswer | Outcome::Busy | Outcome::Failed));
    match callback_at {
        Some(at) if status == CallStatus::Completed && outcome == Some(Outcome::CallbackRequested) => {
            AfterCall::RetryAt(at)
        }
        _ if unreached => AfterCall::RetryAt(ended_at.plus_seconds(retry.retry_interval * 60)),
        _ => AfterCall::Done,
    }
}

/// Whether a call has ended (the dialer waits for the others).
pub fn has_ended(status: CallStatus) -> bool {
    matches!(status, CallStatus::Completed | CallStatus::Failed | CallStatus::Cancelled)
}

/// Calls the campaign may start now: its limit minus the calls it has under way.
pub fn free_slots(max_concurrent_calls: i64, in_flight: i64) -> usize {
    usize::try_from(max_concurrent_calls.saturating_sub(in_flight)).unwrap_or(0)
}

/// A campaign is complete when nothing is under way and nobody is left to call: every contact
/// is done, or the schedule's `endDate` has passed (contacts not reached by then stay so).
/// A campaign created with no audience has called nobody: it is not "done" by itself (only
/// its `endDate`, or the API, ends it), so activating one does not flip it to `completed`.
pub fn is_complete(audience: i64, in_flight: i64, pending: i64, window: Window) -> bool {
    in_flight == 0 && ((pending == 0 && audience > 0) || window == Window::Over)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn schedule(zone: &str) -> Schedule {
        serde_json::from_value(serde_json::json!({
            "startDate": "2025-05-20T00:00:00Z",
            "endDate": "2025-06-20T00:00:00Z",
            "timeZone": zone,
            "callHours": {"start": "09:00", "end": "17:00"},
            "daysOfWeek": [1, 2, 3, 4, 5]
        }))
        .unwrap()
    }

    #[test]
    fn no_schedule_is_always_open() {
        assert_eq!(window_at(None, at("2025-05-24T03:00:00Z")), Window::Open);
    }

    #[test]
    fn the_date_window_bounds_everything() {
        let s = schedule("UTC");
        assert_eq!(window_at(Some(&s), at("2025-05-19T10:00:00Z")), Window::NotYet);
        assert_eq!(window_at(Some(&s), at("2025-05-20T10:00:00Z")), Window::Open); // a Tuesday
        assert_eq!(window_at(Some(&s), at("2025-06-20T00:00:00Z")), Window::Over);
        assert_eq!(window_at(Some(&s), at("2025-07-01T10:00:00Z")), Window::Over);
    }

    #[test]
    fn hours_and_days_are_read_in_the_schedules_zone() {
        let s = schedule("America/New_York");
        // 2025-05-20 is a Tuesday; New York is UTC-4 in May (EDT).
        assert_eq!(window_at(Some(&s), at("2025-05-20T12:59:59Z")), Window::Closed); // 08:59:59
        assert_eq!(window_at(Some(&s), at("2025-05-20T13:00:00Z")), Window::Open); // 09:00
        assert_eq!(window_at(Some(&s), at("2025-05-20T20:59:59Z")), Window::Open); // 16:59:59
        assert_eq!(window_at(Some(&s), at("2025-05-20T21:00:00Z")), Window::Closed); // 17:00, end excluded
        // Saturday 10:00 in New York.
        assert_eq!(window_at(Some(&s), at("2025-05-24T14:00:00Z")), Window::Closed);
        // Monday 01:00 UTC is still Sunday 21:00 in New York.
        assert_eq!(window_at(Some(&s), at("2025-05-26T01:00:00Z")), Window::Closed);
    }

    #[test]
    fn daylight_saving_moves_the_hours_with_the_wall_clock() {
        let mut s = schedule("America/New_York");
        s.start_date = at("2025-01-01T00:00:00Z");
        s.end_date = None;
        // 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT).
        assert_eq!(window_at(Some(&s), at("2025-03-07T13:30:00Z")), Window::Closed); // Fri 08:30 EST
        assert_eq!(window_at(Some(&s), at("2025-03-10T13:30:00Z")), Window::Open); // Mon 09:30 EDT
    }

    #[test]
    fn a_schedule_that_no_longer_parses_does_not_dial() {
        let mut s = schedule("UTC");
        s.time_zone = "Mars/Olympus_Mons".into();
        assert_eq!(window_at(Some(&s), at("2025-05-20T10:00:00Z")), Window::Closed);
    }

    #[test]
    fn unreached_contacts_are_retried_until_their_attempts_run_out() {
        let retry = RetrySettings { max_attempts: 3, retry_interval: 60 };
        let ended = at("2025-05-20T10:00:00Z");
        let again = AfterCall::RetryAt(at("2025-05-20T11:00:00Z"));
        for outcome in [Outcome::NoAnswer, Outcome::Busy, Outcome::Failed] {
            assert_eq!(after_call(CallStatus::Failed, Some(outcome), None, 1, ended, &retry), again, "{outcome}");
            assert_eq!(after_call(CallStatus::Failed, Some(outcome), None, 2, ended, &retry), again, "{outcome}");
            assert_eq!(after_call(CallStatus::Failed, Some(outcome), None, 3, ended, &retry), AfterCall::Done);
        }
        let once = RetrySettings { max_attempts: 1, retry_interval: 60 };
        assert_eq!(after_call(CallStatus::Failed, Some(Outcome::Busy), None, 1, ended, &once), AfterCall::Done);
    }

    #[test]
    fn reached_or_cancelled_contacts_are_done() {
        let retry = RetrySettings { max_attempts: 3, retry_interval: 60 };
        let ended = at("2025-05-20T10:00:00Z");
        for outcome in Outcome::ALL {
            assert_eq!(after_call(CallStatus::Completed, Some(*outcome), None, 1, ended, &retry), AfterCall::Done);
            assert_eq!(after_call(CallStatus::Cancelled, Some(*outcome), None, 1, ended, &retry), AfterCall::Done);
        }
        assert_eq!(after_call(CallStatus::Cancelled, None, None, 1, ended, &retry), AfterCall::Done);
        // A failed call that still reached someone (it went wrong mid-conversation) is done too.
        assert_eq!(after_call(CallStatus::Failed, Some(Outcome::OptedOut), None, 1, ended, &retry), AfterCall::Done);
    }

    #[test]
    fn a_callback_asked_for_is_made_then_within_the_attempts() {
        let retry = RetrySettings { max_attempts: 2, retry_interval: 60 };
        let ended = at("2025-05-20T10:00:00Z");
        let asked = Some(at("2025-05-21T15:00:00Z"));
        let callback = Some(Outcome::CallbackRequested);
        assert_eq!(
            after_call(CallStatus::Completed, callback, asked, 1, ended, &retry),
            AfterCall::RetryAt(at("2025-05-21T15:00:00Z"))
        );
        assert_eq!(after_call(CallStatus::Completed, callback, asked, 2, ended, &retry), AfterCall::Done);
        // "Call me later" without a time: reached, done.
        assert_eq!(after_call(CallStatus::Completed, callback, None, 1, ended, &retry), AfterCall::Done);
        // A time only counts with that outcome.
        assert_eq!(
            after_call(CallStatus::Completed, Some(Outcome::Successful), asked, 1, ended, &retry),
            AfterCall::Done
        );
    }

    #[test]
    fn slots_and_completion() {
        assert_eq!(free_slots(10, 3), 7);
        assert_eq!(free_slots(2, 2), 0);
        assert_eq!(free_slots(2, 5), 0);
        assert!(is_complete(5, 0, 0, Window::Open));
        assert!(!is_complete(5, 1, 0, Window::Open));
        assert!(!is_complete(5, 0, 4, Window::Closed));
        assert!(is_complete(5, 0, 4, Window::Over));
        assert!(!is_complete(5, 2, 4, Window::Over));
        assert!(!is_complete(0, 0, 0, Window::Open), "an empty campaign waits for the API");
        assert!(is_complete(0, 0, 0, Window::Over));
    }
}
