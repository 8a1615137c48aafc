//! Wall-clock time as the API shows it: RFC 3339 UTC with whole seconds (`2026-01-15T08:00:00Z`).
//!
//! Stored times are Unix milliseconds; this module only converts, so it stays pure and testable.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now. A clock before 1970 reads as 0.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Formats Unix milliseconds as an IMF-fixdate HTTP-date, `Thu, 15 Jan 2026 08:00:00 GMT`,
/// truncated to whole seconds.
pub fn http_date(unix_ms: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Formats Unix milliseconds as RFC 3339 UTC, truncated to whole seconds.
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) of the proleptic Gregorian calendar to days since 1970-01-01; the inverse
/// of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP-date (RFC 9110 §5.6.7) as Unix seconds: the IMF-fixdate form
/// `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete forms recipients must still accept,
/// `Sunday, 06-Nov-94 08:49:37 GMT` and `Sun Nov  6 08:49:37 1994`. The weekday is not checked.
pub fn parse_http_date(value: &str) -> Option<i64> {
    let v = value.trim();
    let (day, month, year, time) = if let Some((_, rest)) = v.split_once(", ") {
        let rest = rest.strip_suffix(" GMT")?;
        let (date, time) = rest.split_once(' ')?;
        if let Some((day, rest)) = date.split_once('-') {
            // rfc850-date: 2-digit year, in the century that puts it at most 50 years ahead.
            let (month, yy) = rest.split_once('-')?;
            let yy = digits(yy, 2)?;
            let (y, _, _) = civil_from_days(now_ms().div_euclid(86_400_000));
            let mut year = y - y.rem_euclid(100) + yy;
            if year > y + 50 {
                year -= 100;
            }
            (digits(day, 2)?, month, year, time)
        } else {
            let mut parts = rest.splitn(4, ' ');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            (digits(day, 2)?, month, digits(year, 4)?, parts.next()?)
        }
    } else {
        // asctime-date: `Sun Nov  6 08:49:37 1994` (day padded with a space)
        let rest = v.get(4..)?;
        let month = rest.get(..3)?;
        let day = rest.get(4..6)?.trim_start();
        let day = digits(day, day.len())?;
        let rest = rest.get(7..)?;
        let (time, year) = rest.split_once(' ')?;
        (day, month, digits(year, 4)?, time)
    };
    let month = (1..)
        .zip(MONTHS)
        .find_map(|(n, m)| (m == month).then_some(n))?;
    let mut hms = time.split(':');
    let (h, mi, s) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() {
        return None;
    }
    let (h, mi, s) = (digits(h, 2)?, digits(mi, 2)?, digits(s, 2)?);
    let days_in_month = days_from_civil(year + i64::from(month == 12), month % 12 + 1, 1)
        - days_from_civil(year, month, 1);
    if !(1..=days_in_month).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parses an RFC 3339 timestamp (`2026-01-15T08:00:00Z`, `2026-01-15T09:00:00.5+01:00`; `T`
/// and `Z` in either case) to Unix milliseconds. Years 0000-9999; leap seconds read as :59.
pub fn parse_rfc3339(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| value.get(r).and_then(|s| digits(s, s.len()));
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) {
        return None;
    }
    let days_in_month = days_from_civil(year + i64::from(month == 12), month % 12 + 1, 1)
        - days_from_civil(year, month, 1);
    if !(1..=days_in_month).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = value.get(19..)?;
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..n.min(3)]);
        millis = digits(&padded, 3)?;
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest.get(1..)?.split_once(':')?;
            let (oh, om) = (digits(oh, 2)?, digits(om, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s.min(59);
    Some((secs - offset_secs) * 1000 + millis)
}

/// Parses an X.509 validity time to Unix milliseconds: UTCTime `YYMMDDHHMMSSZ` (years 1950-2049,
/// as RFC 5280 reads them) or GeneralizedTime `YYYYMMDDHHMMSSZ`.
pub fn parse_asn1_time(value: &[u8], generalized: bool) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = if generalized {
        (digits(text.get(..4)?, 4)?, text.get(4..)?)
    } else {
        let yy = digits(text.get(..2)?, 2)?;
        (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
    };
    if rest.len() != 10 || !rest.is_ascii() {
        return None;
    }
    let iso = format!(
        "{year:04}-{}-{}T{}:{}:{}Z",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    );
    parse_rfc3339(&iso)
}

/// Exactly `len` ASCII digits as a number.
fn digits(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn x509_times() {
        let at = parse_rfc3339("2027-03-04T05:06:07Z").unwrap();
        assert_eq!(parse_asn1_time(b"270304050607Z", false), Some(at));
        assert_eq!(parse_asn1_time(b"20270304050607Z", true), Some(at));
        assert_eq!(
            parse_asn1_time(b"500101000000Z", false),
            parse_rfc3339("1950-01-01T00:00:00Z")
        );
        for bad in [
            &b"270304050607"[..],
            b"2703040506Z",
            b"27130405060\xffZ",
            b"\xe2\x82\xac0304050607Z",
        ] {
            assert_eq!(parse_asn1_time(bad, false), None);
        }
    }

    #[test]
    fn parses_rfc3339() {
        let t = 1_768_464_000_000; // 2026-01-15T08:00:00Z
        assert_eq!(parse_rfc3339("2026-01-15T08:00:00Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-15t08:00:00z"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-15T09:30:00+01:30"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-15T07:00:00-01:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-01-15T08:00:00.250Z"), Some(t + 250));
        assert_eq!(parse_rfc3339("2026-01-15T08:00:00.5Z"), Some(t + 500));
        assert_eq!(
            parse_rfc3339("2026-01-15T08:00:00.123456789Z"),
            Some(t + 123)
        );
        for bad in [
            "",
            "2026-01-15",
            "2026-01-15 08:00:00Z",
            "2026-13-15T08:00:00Z",
            "2026-02-30T08:00:00Z",
            "2026-01-15T24:00:00Z",
            "2026-01-15T08:00:00",
            "2026-01-15T08:00:00.Z",
            "2026-01-15T08:00:00+1:00",
            "2026-01-15T08:00:00+01:00x",
            "２026-01-15T08:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // What rfc3339() writes reads back.
        for ms in [0, t, 253_402_300_799_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // The seed's example timestamp.
        assert_eq!(rfc3339(1_768_464_000_000), "2026-01-15T08:00:00Z");
        assert_eq!(rfc3339(951_782_400_999), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399_000), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(784_111_777_999), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(1_768_464_000_000),
            "Thu, 15 Jan 2026 08:00:00 GMT"
        );
        assert_eq!(http_date(-1000), "Wed, 31 Dec 1969 23:59:59 GMT");
        for ms in [0, 951_782_400_000, 4_107_542_399_000] {
            assert_eq!(parse_http_date(&http_date(ms)), Some(ms / 1000));
        }
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 1, 10_957, 11_016, 20_468, 47_541, 800_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        // RFC 9110's example instant, 784111777.
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date(" Thu, 15 Jan 2026 08:00:00 GMT "),
            Some(1_768_464_000)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 00:00:00 GMT"),
            Some(1_835_395_200)
        );
        for bad in [
            "",
            "120",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Mon, 29 Feb 2027 00:00:00 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun Nov 66 08:49:37 1994",
            "Sun Nov  6 08:49:37",
            "Sun",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
