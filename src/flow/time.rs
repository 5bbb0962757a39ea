//! Calendar arithmetic without a clock: SMPP times (validity_period, schedule_delivery_time)
//! to Unix milliseconds, and Unix milliseconds to receipt dates.

use crate::smpp::ReceiptDate;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + (c - b'0') as i64)
    })
}

/// An SMPP time (`YYMMDDhhmmsstnnp`, 16 characters) as Unix milliseconds: absolute times
/// (`p` is `+` or `-`, `nn` quarter hours from UTC) as they are, relative ones (`p` is `R`)
/// from `now_ms`. `None` for the empty string and anything malformed (months 13, hour 25).
pub fn smpp_time_ms(t: &[u8], now_ms: u64) -> Option<u64> {
    if t.len() != 16 {
        return None;
    }
    let f = |r: std::ops::Range<usize>| digits(&t[r]);
    let (yy, mo, dd, hh, mi, ss, tenth) = (
        f(0..2)?,
        f(2..4)?,
        f(4..6)?,
        f(6..8)?,
        f(8..10)?,
        f(10..12)?,
        f(12..13)?,
    );
    let nn = f(13..15)?;
    match t[15] {
        b'R' => {
            // Relative: a period, with years of 365 days and months of 30.
            let secs = ((yy * 365 + mo * 30 + dd) * 24 + hh) * 3600 + mi * 60 + ss;
            Some(now_ms.saturating_add(secs as u64 * 1000))
        }
        sign @ (b'+' | b'-') => {
            if !(1..=12).contains(&mo)
                || !(1..=31).contains(&dd)
                || hh > 23
                || mi > 59
                || ss > 59
                || nn > 48
            {
                return None;
            }
            let days = days_from_civil(2000 + yy, mo as u32, dd as u32);
            let local_ms = ((days * 86_400 + hh * 3600 + mi * 60 + ss) * 1000) + tenth * 100;
            let offset_ms = nn * 15 * 60 * 1000;
            let utc = if sign == b'+' {
                local_ms - offset_ms
            } else {
                local_ms + offset_ms
            };
            u64::try_from(utc).ok()
        }
        _ => None,
    }
}

/// Unix milliseconds as a receipt date (UTC, minutes; the canonical form).
pub fn receipt_date(ms: u64) -> ReceiptDate {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    ReceiptDate {
        year: y as u16,
        month: m as u8,
        day: d as u8,
        hour: (s / 3600) as u8,
        minute: (s / 60 % 60) as u8,
        second: None,
    }
}

thread_local! {
    /// The second the last `time` was written in, and its text up to the seconds
    /// (`YYYY-MM-DDTHH:MM:SS.`, 20 octets).
    static SECOND: std::cell::Cell<(i64, [u8; 20])> = const {
        std::cell::Cell::new((i64::MIN, [0; 20]))
    };
}

/// Appends Unix milliseconds `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC; the date and time of
/// day worked out once a second per thread): CDR times and log lines.
pub fn push_iso_millis(ms: u64, out: &mut Vec<u8>) {
    let secs = (ms / 1000) as i64;
    let (at, mut text) = SECOND.get();
    if at != secs {
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400) as u32;
        // A year outside 0..=9999 (a clock far off) is written as its last four digits.
        let y = y.rem_euclid(10_000) as u32;
        let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        let [y0, y1] = two(y / 100);
        let [y2, y3] = two(y);
        let [m0, m1] = two(m);
        let [d0, d1] = two(d);
        let [h0, h1] = two(s / 3600);
        let [n0, n1] = two(s / 60 % 60);
        let [s0, s1] = two(s % 60);
        text = [
            y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', n0, n1, b':', s0, s1,
            b'.',
        ];
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    push_millis(ms, out);
}

fn push_millis(ms: u64, out: &mut Vec<u8>) {
    let milli = ms % 1000;
    out.extend_from_slice(&[
        b'0' + (milli / 100) as u8,
        b'0' + (milli / 10 % 10) as u8,
        b'0' + (milli % 10) as u8,
        b'Z',
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_both_ways() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_421), (2025, 11, 29));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for z in [-1000, 0, 11_016, 20_421, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn smpp_times_absolute_and_relative() {
        // 2026-12-02 10:00:00.0 at UTC+1 (04 quarter hours) is 09:00 UTC.
        let t = smpp_time_ms(b"261202100000004+", 0).unwrap();
        let expect = (days_from_civil(2026, 12, 2) * 86_400 + 9 * 3600) as u64 * 1000;
        assert_eq!(t, expect);
        assert_eq!(
            smpp_time_ms(b"261202100000004-", 0).unwrap(),
            expect + 2 * 3_600_000
        );
        // Relative: one day, two hours, three seconds.
        assert_eq!(
            smpp_time_ms(b"000001020003000R", 1_000).unwrap(),
            1_000 + (26 * 3600 + 3) * 1000
        );
        assert_eq!(smpp_time_ms(b"", 0), None);
        assert_eq!(smpp_time_ms(b"261302100000004+", 0), None);
        assert_eq!(smpp_time_ms(b"2612021000000x4+", 0), None);
        assert_eq!(smpp_time_ms(b"261202100000004Z", 0), None);
    }

    #[test]
    fn receipt_dates_are_utc_minutes() {
        let ms = (days_from_civil(2026, 12, 2) * 86_400 + 9 * 3600 + 5 * 60 + 7) as u64 * 1000;
        let d = receipt_date(ms);
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute),
            (2026, 12, 2, 9, 5)
        );
    }
}
