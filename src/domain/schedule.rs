//! Campaign schedules: a date window, a time zone, daily calling hours and weekdays.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallHours {
    #[schema(example = "09:00")]
    pub start: String,
    #[schema(example = "17:00")]
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    #[schema(value_type = String, format = DateTime, example = "2025-05-20T09:00:00Z")]
    pub start_date: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2025-05-25T17:00:00Z")]
    pub end_date: Option<Timestamp>,
    #[serde(default = "default_time_zone")]
    #[schema(example = "America/New_York")]
    pub time_zone: String,
    #[serde(default = "default_call_hours")]
    pub call_hours: CallHours,
    #[serde(default = "default_days")]
    #[schema(example = json!([1, 2, 3, 4, 5]))]
    pub days_of_week: Vec<u8>,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

fn default_call_hours() -> CallHours {
    CallHours { start: "09:00".to_owned(), end: "17:00".to_owned() }
}

fn default_days() -> Vec<u8> {
    vec![1, 2, 3, 4, 5]
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ScheduleError {
    pub field: &'static str,
    pub reason: String,
}

fn err(field: &'static str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError { field, reason: reason.into() }
}

pub fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Time::new(h, m, 0, 0).ok()
}

impl Schedule {
    /// Checks everything serde could not: zone, hours, days and the date window.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        TimeZone::get(&self.time_zone)
            .map_err(|_| err("schedule.timeZone", format!("'{}' is not an IANA time zone", self.time_zone)))?;
        let start = parse_hhmm(&self.call_hours.start)
            .ok_or_else(|| err("schedule.callHours.start", "must be a time of day as HH:MM (00:00-23:59)"))?;
        let end = parse_hhmm(&self.call_hours.end)
            .ok_or_else(|| err("schedule.callHours.end", "must be a time of day as HH:MM (00:00-23:59)"))?;
        if end <= start {
            return Err(err("schedule.callHours", "end must be after start"));
        }
        if self.days_of_week.is_empty() {
            return Err(err("schedule.daysOfWeek", "must name at least one day (1 = Monday ... 7 = Sunday)"));
        }
        let mut seen = [false; 8];
        for &d in &self.days_of_week {
            if !(1..=7).contains(&d) {
                return Err(err("schedule.daysOfWeek", "days are 1 (Monday) to 7 (Sunday)"));
            }
            if seen[d as usize] {
                return Err(err("schedule.daysOfWeek", format!("day {d} is listed twice")));
            }
            seen[d as usize] = true;
        }
        if let Some(end_date) = self.end_date
            && end_date <= self.start_date
        {
            return Err(err("schedule.endDate", "must be after startDate"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        serde_json::from_value(serde_json::json!({
            "startDate": "2025-05-20T09:00:00Z",
            "endDate": "2025-05-25T17:00:00Z",
            "timeZone": "America/New_York",
            "callHours": {"start": "09:00", "end": "17:00"},
            "daysOfWeek": [1, 2, 3, 4, 5]
        }))
        .unwrap()
    }

    #[test]
    fn the_spec_example_is_valid() {
        assert_eq!(schedule().validate(), Ok(()));
    }

    #[test]
    fn rejects_each_bad_part() {
        let mut s = schedule();
        s.time_zone = "Mars/Olympus".into();
        assert_eq!(s.validate().unwrap_err().field, "schedule.timeZone");
        let mut s = schedule();
        s.call_hours.start = "9:00".into();
        assert_eq!(s.validate().unwrap_err().field, "schedule.callHours.start");
        let mut s = schedule();
        s.call_hours.end = "08:00".into();
        assert_eq!(s.validate().unwrap_err().field, "schedule.callHours");
        let mut s = schedule();
        s.days_of_week = vec![0];
        assert_eq!(s.validate().unwrap_err().field, "schedule.daysOfWeek");
        let mut s = schedule();
        s.end_date = Some(s.start_date);
        assert_eq!(s.validate().unwrap_err().field, "schedule.endDate");
        assert!(parse_hhmm("24:00").is_none());
        assert!(parse_hhmm("23:59").is_some());
    }
}
