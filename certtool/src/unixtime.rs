//! Certificate times: unix seconds as GNS stores them (`fixed32`, so 1970..=2106), written and
//! read as RFC 3339 in UTC without loss.
//!
//! GNS's certtool prints `ctime` text and, in JSON, floats with six significant digits
//! (`1.79645e+09`): neither gives the exact second back. Here every time is shown as both
//! the exact integer and `YYYY-MM-DDTHH:MM:SSZ`, and [`parse`] accepts either form, so a time
//! printed by `inspect` can be fed back to `issue` unchanged.
//!
//! The calendar arithmetic is the proleptic Gregorian day count (days since 1970-01-01 from a
//! civil date and back), exact for every date a `u32` of seconds can reach.

/// Seconds in a day.
pub const SECS_PER_DAY: u64 = 86_400;

/// Why a time string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// Neither unix seconds nor `YYYY-MM-DDTHH:MM:SS(Z|±HH:MM)`.
    #[error("'{0}' is not a time: expected RFC 3339 (e.g. 2030-01-31T12:00:00Z) or unix seconds")]
    Syntax(String),
    /// A field out of range (month 13, 25 o'clock, February 30th...).
    #[error("'{0}' is not a valid date and time")]
    OutOfRange(String),
    /// A fraction of a second that is not zero: certificates hold whole seconds.
    #[error("'{0}' has a fraction of a second; certificates hold whole seconds")]
    Fraction(String),
    /// Before 1970 or after 2106-02-07T06:28:15Z, the range of GNS's 32-bit times.
    #[error("'{0}' is outside the range of certificate times (1970 to 2106-02-07T06:28:15Z)")]
    NotRepresentable(String),
}

/// Reads unix seconds or an RFC 3339 date-time and returns unix seconds that fit a `u32`.
pub fn parse(text: &str) -> Result<u32, TimeError> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u32>()
            .map_err(|_| TimeError::NotRepresentable(text.to_owned()));
    }
    let secs = parse_rfc3339(t).map_err(|e| e.with_text(text))?;
    u32::try_from(secs).map_err(|_| TimeError::NotRepresentable(text.to_owned()))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds.
pub fn format_rfc3339(secs: u64) -> String {
    let days = secs / SECS_PER_DAY;
    let rem = secs % SECS_PER_DAY;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Internal parse failure, before the original text is attached.
enum Fail {
    Syntax,
    Range,
    Fraction,
}

impl Fail {
    fn with_text(self, text: &str) -> TimeError {
        let t = text.to_owned();
        match self {
            Fail::Syntax => TimeError::Syntax(t),
            Fail::Range => TimeError::OutOfRange(t),
            Fail::Fraction => TimeError::Fraction(t),
        }
    }
}

/// RFC 3339 `date-time` (also with a space or lowercase `t` between date and time) to signed
/// unix seconds.
fn parse_rfc3339(s: &str) -> Result<i64, Fail> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(Fail::Syntax);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(Fail::Syntax);
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(Fail::Syntax);
        }
        if frac[..n].iter().any(|&c| c != b'0') {
            return Err(Fail::Fraction);
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return Err(Fail::Range);
            }
            let o = (oh * 3600 + om * 60) as i64;
            if *sign == b'-' { -o } else { o }
        }
        _ => return Err(Fail::Syntax),
    };
    // RFC 3339 allows second 60 (a leap second); unix time has none, so it is refused.
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(Fail::Range);
    }
    let days = days_from_civil(year as i64, month, day);
    Ok(days * SECS_PER_DAY as i64 + (hour * 3600 + minute * 60 + second) as i64 - offset)
}

fn digits(b: &[u8]) -> Result<u32, Fail> {
    b.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(Fail::Syntax)
        }
    })
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_796_450_000), "2026-12-05T05:53:20Z");
        assert_eq!(format_rfc3339(u64::from(u32::MAX)), "2106-02-07T06:28:15Z");
    }

    #[test]
    fn parse_inverts_format_over_the_whole_range() {
        let mut t: u64 = 0;
        while t <= u64::from(u32::MAX) {
            let s = format_rfc3339(t);
            assert_eq!(u64::from(parse(&s).ok().unwrap_or(0)), t, "{s}");
            t += 7_777_777;
        }
    }

    #[test]
    fn parses_offsets_fractions_and_integers() {
        assert_eq!(parse("2000-01-01T01:00:00+01:00"), Ok(946_684_800));
        assert_eq!(parse("1999-12-31T19:00:00-05:00"), Ok(946_684_800));
        assert_eq!(parse("2000-01-01 00:00:00.000z"), Ok(946_684_800));
        assert_eq!(parse(" 946684800 "), Ok(946_684_800));
    }

    #[test]
    fn refuses_bad_times_with_the_reason() {
        assert!(matches!(parse("tomorrow"), Err(TimeError::Syntax(_))));
        assert!(matches!(
            parse("2001-02-29T00:00:00Z"),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(matches!(
            parse("2001-01-01T00:00:60Z"),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(matches!(
            parse("2001-01-01T00:00:00.5Z"),
            Err(TimeError::Fraction(_))
        ));
        assert!(matches!(
            parse("2001-01-01T00:00:00"),
            Err(TimeError::Syntax(_))
        ));
        assert!(matches!(
            parse("2106-02-07T06:28:16Z"),
            Err(TimeError::NotRepresentable(_))
        ));
        assert!(matches!(
            parse("1969-12-31T23:59:59Z"),
            Err(TimeError::NotRepresentable(_))
        ));
        assert!(matches!(
            parse("4294967296"),
            Err(TimeError::NotRepresentable(_))
        ));
    }
}
