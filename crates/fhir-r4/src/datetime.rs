//! Instants as the server writes them, and FHIR date/dateTime values read as time ranges.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time with millisecond precision, always written in UTC (`...Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    millis: i64,
}

impl Instant {
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Instant { millis: (now.unix_timestamp_nanos() / 1_000_000) as i64 }
    }
    pub fn from_millis(millis: i64) -> Self {
        Instant { millis }
    }
    pub fn millis(&self) -> i64 {
        self.millis
    }
    fn to_offset(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.millis as i128 * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
    /// RFC 7231 date for `Last-Modified` headers.
    pub fn http_date(&self) -> String {
        let t = self.to_offset();
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            DAYS[t.weekday().number_days_from_monday() as usize],
            t.day(),
            MONTHS[t.month() as usize - 1],
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
    /// Parses an RFC 7231 date (`If-Modified-Since`).
    pub fn parse_http_date(text: &str) -> Option<Instant> {
        let fmt = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let t = PrimitiveDateTime::parse(text.trim(), fmt).ok()?.assume_utc();
        Some(Instant { millis: (t.unix_timestamp_nanos() / 1_000_000) as i64 })
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_offset();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

/// The half-open range `[start, end)` in epoch milliseconds that a partial FHIR date or
/// dateTime covers: `2024` is the whole year, `2024-03-01T10:00:00Z` one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

/// Reads `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a full dateTime/instant. Values without a zone are
/// taken as UTC. Returns `None` for anything else.
pub fn parse_date_range(text: &str) -> Option<DateRange> {
    let millis = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    if text.contains('T') {
        let full = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let frac =
            text.split_once('.').map(|(_, rest)| rest.bytes().take_while(u8::is_ascii_digit).count() as u32);
        let step = match frac {
            None => 1000,
            Some(digits) => 10i64.pow(3u32.saturating_sub(digits)).max(1),
        };
        let start = millis(full);
        return Some(DateRange { start, end: start + step });
    }
    let mut parts = text.split('-');
    let year: i32 = parts.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month = parts.next();
    let day = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let utc = |d: Date| millis(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_offset(UtcOffset::UTC));
    match (month, day) {
        (None, _) => {
            let start = Date::from_calendar_date(year, Month::January, 1).ok()?;
            let end = Date::from_calendar_date(year + 1, Month::January, 1).ok()?;
            Some(DateRange { start: utc(start), end: utc(end) })
        }
        (Some(m), None) => {
            let m: u8 = m.parse().ok().filter(|_| m.len() == 2)?;
            let month = Month::try_from(m).ok()?;
            let start = Date::from_calendar_date(year, month, 1).ok()?;
            let (ny, nm) = if m == 12 { (year + 1, Month::January) } else { (year, month.next()) };
            let end = Date::from_calendar_date(ny, nm, 1).ok()?;
            Some(DateRange { start: utc(start), end: utc(end) })
        }
        (Some(m), Some(d)) => {
            let m: u8 = m.parse().ok().filter(|_| m.len() == 2)?;
            let d: u8 = d.parse().ok().filter(|_| d.len() == 2)?;
            let start = Date::from_calendar_date(year, Month::try_from(m).ok()?, d).ok()?;
            let end = start.next_day()?;
            Some(DateRange { start: utc(start), end: utc(end) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<(&str, &str)>) {
        let got = parse_date_range(input)
            .map(|r| (Instant::from_millis(r.start).to_string(), Instant::from_millis(r.end).to_string()));
        let expected = expected.map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(got, expected, "{input}");
    }

    #[test]
    fn date_ranges_follow_precision() {
        check("2024", Some(("2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z")));
        check("2024-12", Some(("2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z")));
        check("2024-02-29", Some(("2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z")));
        check("2023-02-29", None);
        check("2024-03-01T10:00:00+01:00", Some(("2024-03-01T09:00:00.000Z", "2024-03-01T09:00:01.000Z")));
        check("2024-03-01T10:00:00.5Z", Some(("2024-03-01T10:00:00.500Z", "2024-03-01T10:00:00.600Z")));
        check("24-03", None);
        check("yesterday", None);
    }

    #[test]
    fn instants_print_utc_millis_and_http_dates_round_trip() {
        let t = Instant::from_millis(1_700_000_000_123);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
        assert_eq!(t.http_date(), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(Instant::parse_http_date(&t.http_date()), Some(Instant::from_millis(1_700_000_000_000)));
    }
}
