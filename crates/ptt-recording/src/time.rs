//! Unix milliseconds as UTC calendar text, for file names and the `STARTED`
//! tag. No time crate is needed for two fixed formats.

/// The current time in unix milliseconds (0 if the clock is before 1970).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Latest instant with a four-digit year (9999-12-31T23:59:59.999Z), so every
/// formatted value has the same width.
const MAX_MS: i64 = 253_402_300_799_999;

/// Days since 1970-01-01 as a (year, month, day) of the proleptic Gregorian
/// calendar, by counting 400-year eras of 146 097 days that start on March 1
/// (so the leap day is the last day of an era's year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days from 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of
/// [`civil_from_days`], same eras.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` (UTC) of unix milliseconds, clamped to years 1970–9999.
pub(super) fn date(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_MS);
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 UTC with milliseconds, always 24 characters
/// (`2025-01-31T08:15:00.250Z`), clamped to years 1970–9999.
pub(super) fn rfc3339_ms(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_MS);
    let in_day = ms.rem_euclid(86_400_000);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000,
    );
    format!("{}T{h:02}:{min:02}:{s:02}.{milli:03}Z", date(ms))
}

/// Length of every [`rfc3339_ms`] value.
pub(super) const RFC3339_MS_LEN: usize = 24;

/// Whether `name` is a day folder's name as [`date`] writes it
/// (`YYYY-MM-DD`, digits where digits go). Such names sort by date.
pub(super) fn is_date(name: &str) -> bool {
    name.len() == 10
        && name.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Unix milliseconds of an [`rfc3339_ms`] value, `None` for anything else
/// (read back from a recording's `STARTED` tag).
pub(super) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape = b.len() == RFC3339_MS_LEN
        && is_date(text.get(..10)?)
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let ms = days * 86_400_000
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1_000
        + i64::from(milli);
    // A day past the month's end would name another date: refuse it.
    (rfc3339_ms(ms) == text).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_ms(1_735_689_600_250), "2025-01-01T00:00:00.250Z");
        assert_eq!(rfc3339_ms(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(date(1_709_164_800_000), "2024-02-29");
    }

    #[test]
    fn formatted_instants_parse_back() {
        for ms in [
            0,
            951_782_400_000,
            951_868_799_999,
            1_735_689_600_250,
            MAX_MS,
        ] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms));
        }
        for bad in [
            "",
            "2025-02-30T00:00:00.000Z",
            "2025-01-31T24:00:00.000Z",
            "2025-01-31 08:15:00.250Z",
            "2025-01-31T08:15:00.250",
            "+025-01-31T08:15:00.250Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert!(is_date("2025-01-31"));
        assert!(!is_date(".partial") && !is_date("2025-1-31x") && !is_date("2025/01/31"));
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // 1970 to 2200, day by day: the calendar never skips or repeats.
        let mut last = date(0);
        for day in 1..(230 * 366) {
            let next = date(day * 86_400_000);
            assert!(next > last, "{next} after {last}");
            assert_eq!(rfc3339_ms(day * 86_400_000).len(), RFC3339_MS_LEN);
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            last = next;
        }
    }
}
