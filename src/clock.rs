//! Dates and times at the edges. Inside, time is Unix seconds; token expiry is a calendar
//! date, and a token stops working at 00:00 UTC of that date.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// Now, in Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
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

/// An optional `YYYY-MM-DD` with serde: `#[serde(with = "crate::clock::optional_date")]`.
/// (Read through `Option<String>`, so it also reads inside internally tagged enums,
/// where `time`'s own helper refuses a `null`.)
pub mod optional_date {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => s.serialize_str(&super::format_date(*date)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                super::parse_date(&text)
                    .ok_or_else(|| D::Error::custom(format!("`{text}` is not a YYYY-MM-DD date")))
            })
            .transpose()
    }
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

/// Unix seconds of an RFC 3339 time (`2026-11-23T00:00:00Z`), or `None`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// The first date whose 00:00 UTC is at or after `unix`.
pub fn date_at_or_after(unix: i64) -> Date {
    let before = date_of(unix.saturating_sub(1));
    before.next_day().unwrap_or(before)
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

    #[test]
    fn instants_parse_and_round_up_to_dates() {
        assert_eq!(parse_rfc3339("2027-03-01T00:00:00Z"), Some(1_803_859_200));
        assert_eq!(
            parse_rfc3339("2027-03-01T01:00:00+01:00"),
            Some(1_803_859_200)
        );
        assert!(parse_rfc3339("2027-03-01").is_none());
        let date = parse_date("2027-03-01").unwrap();
        assert_eq!(
            date_at_or_after(1_803_859_200),
            date,
            "midnight is that day"
        );
        assert_eq!(date_at_or_after(1_803_859_201), date.next_day().unwrap());
    }
}
