//! Timestamps: RFC 3339 in UTC on the wire (second precision, as in the spec),
//! fixed-width microsecond text in the database so that text order is time order
//! on both SQLite and PostgreSQL.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

#[derive(Debug, thiserror::Error)]
pub enum InvalidTimestamp {
    #[error("must be an ISO 8601 date (YYYY-MM-DD) or an RFC 3339 date-time (e.g. 2025-05-20T15:30:00Z)")]
    Format,
    /// Arithmetic near jiff's limits (year 9999) would overflow; no call center date is there.
    #[error("must be between {MIN_YEAR}-01-01 and {MAX_YEAR}-12-31")]
    OutOfRange,
}

/// The years a timestamp from a client may fall in.
pub const MIN_YEAR: i16 = 1900;
pub const MAX_YEAR: i16 = 2999;

/// Whether a bare date given as a range bound means the start or the end of that day.
#[derive(Clone, Copy, Debug)]
pub enum DayBound {
    Start,
    End,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(jiff::Timestamp::now())
    }

    pub fn from_jiff(ts: jiff::Timestamp) -> Timestamp {
        Timestamp(ts)
    }

    pub fn as_jiff(self) -> jiff::Timestamp {
        self.0
    }

    /// Parses an RFC 3339 date-time (any offset, normalised to UTC).
    pub fn parse(s: &str) -> Result<Timestamp, InvalidTimestamp> {
        let ts = s.trim().parse::<jiff::Timestamp>().map_err(|_| InvalidTimestamp::Format)?;
        let year = ts.to_zoned(TimeZone::UTC).year();
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(InvalidTimestamp::OutOfRange);
        }
        Ok(Timestamp(ts))
    }

    /// Parses a date-time or a bare `YYYY-MM-DD` date (UTC), as query filters accept.
    pub fn parse_bound(s: &str, bound: DayBound) -> Result<Timestamp, InvalidTimestamp> {
        match Timestamp::parse(s) {
            Ok(ts) => return Ok(ts),
            Err(InvalidTimestamp::OutOfRange) => return Err(InvalidTimestamp::OutOfRange),
            Err(InvalidTimestamp::Format) => {}
        }
        let date: Date = s.trim().parse().map_err(|_| InvalidTimestamp::Format)?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
            return Err(InvalidTimestamp::OutOfRange);
        }
        let start = date.to_zoned(TimeZone::UTC).map_err(|_| InvalidTimestamp::Format)?.timestamp();
        Ok(match bound {
            DayBound::Start => Timestamp(start),
            DayBound::End => Timestamp(start + jiff::SignedDuration::from_micros(86_400_000_000 - 1)),
        })
    }

    /// The database form: `2025-05-20T15:30:00.000000Z`.
    pub fn to_db(self) -> String {
        self.0.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    }

    pub fn from_db(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap_or_else(|_| {
            tracing::error!(value = s, "unparseable timestamp in database");
            Timestamp(jiff::Timestamp::UNIX_EPOCH)
        })
    }

    /// The wire form: `2025-05-20T15:30:00Z`.
    pub fn to_rfc3339(self) -> String {
        self.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    pub fn date_utc(self) -> Date {
        self.0.to_zoned(TimeZone::UTC).date()
    }

    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0 + jiff::SignedDuration::from_secs(seconds))
    }

    pub fn seconds_since(self, earlier: Timestamp) -> i64 {
        self.0.as_second() - earlier.0.as_second()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_normalises_to_utc() {
        let t = Timestamp::parse("2025-05-20T10:30:00-05:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-05-20T15:30:00Z");
        assert_eq!(t.to_db(), "2025-05-20T15:30:00.000000Z");
        assert_eq!(Timestamp::from_db(&t.to_db()), t);
    }

    #[test]
    fn bare_dates_cover_the_whole_day() {
        let start = Timestamp::parse_bound("2025-05-01", DayBound::Start).unwrap();
        let end = Timestamp::parse_bound("2025-05-01", DayBound::End).unwrap();
        assert_eq!(start.to_rfc3339(), "2025-05-01T00:00:00Z");
        assert_eq!(end.to_db(), "2025-05-01T23:59:59.999999Z");
        assert!(Timestamp::parse_bound("yesterday", DayBound::Start).is_err());
        assert!(Timestamp::parse_bound("2025-13-01", DayBound::Start).is_err());
        // Near jiff's limits the day's end and later arithmetic would overflow.
        for far in ["9999-12-30", "9999-12-31", "3000-01-01", "1899-12-31", "9999-12-30T00:00:00Z"] {
            assert!(matches!(Timestamp::parse_bound(far, DayBound::End), Err(InvalidTimestamp::OutOfRange)), "{far}");
        }
        assert!(Timestamp::parse_bound("2999-12-31", DayBound::End).is_ok());
    }
}
