//! Dates and times at the edges. Inside, time is Unix seconds; token expiry is a calendar
//! date, and a token stops working at 00:00 UTC of that date.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Now, in Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The UTC date of a Unix time.
pub fn date_of(unix: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// 00:00 UTC of `date`, in Unix seconds.
pub fn midnight(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp()
}

/// RFC 3339 (`2026-11-22T10:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_expire_at_midnight_utc() {
        let date = parse_date("2027-03-01").unwrap();
        assert_eq!(format_date(date), "2027-03-01");
        assert_eq!(midnight(date), 1_803_859_200);
        assert_eq!(rfc3339(1_803_859_200), "2027-03-01T00:00:00Z");
        assert_eq!(date_of(1_803_859_200 + 86_399), date);
        assert!(parse_date("2027-02-30").is_none());
        assert!(parse_date("2027-3-1").is_none());
        assert!(parse_date("2027-03-01T00:00:00Z").is_none());
    }
}
