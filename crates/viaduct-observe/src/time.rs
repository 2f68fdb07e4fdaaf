//! UTC timestamps in the forms Traefik's logs use, without a calendar dependency.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment broken into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl UtcTime {
    pub fn of(time: SystemTime) -> UtcTime {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let of_day = secs.rem_euclid(86_400);
        UtcTime {
            year,
            month,
            day,
            hour: (of_day / 3600) as u32,
            minute: (of_day / 60 % 60) as u32,
            second: (of_day % 60) as u32,
            nanos: since.subsec_nanos(),
        }
    }

    /// `2026-11-28T00:14:00.393510726Z` (Go's RFC 3339 with nanoseconds, trailing zeros cut).
    pub fn rfc3339_nanos(&self) -> String {
        let mut out = self.rfc3339_base();
        if self.nanos > 0 {
            let digits = format!("{:09}", self.nanos);
            let _ = write!(out, ".{}", digits.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }

    /// `2026-11-28T00:14:00Z`.
    pub fn rfc3339(&self) -> String {
        let mut out = self.rfc3339_base();
        out.push('Z');
        out
    }

    /// `28/Nov/2026:00:14:13 +0000`, the Common Log Format's time.
    pub fn clf(&self) -> String {
        let month = MONTHS
            .get(self.month.saturating_sub(1) as usize)
            .unwrap_or(&"Jan");
        format!(
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }

    fn rfc3339_base(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::new(1_795_824_853, 393_510_700);
        let utc = UtcTime::of(t);
        assert_eq!(utc.rfc3339_nanos(), "2026-11-28T00:14:13.3935107Z");
        assert_eq!(utc.rfc3339(), "2026-11-28T00:14:13Z");
        assert_eq!(utc.clf(), "28/Nov/2026:00:14:13 +0000");
        let leap = UtcTime::of(UNIX_EPOCH + Duration::from_secs(951_782_400));
        assert_eq!(leap.rfc3339(), "2000-02-29T00:00:00Z");
        // `startDate` in the API: whole seconds have no fraction at all.
        assert_eq!(
            UtcTime::of(UNIX_EPOCH).rfc3339_nanos(),
            "1970-01-01T00:00:00Z"
        );
    }
}
