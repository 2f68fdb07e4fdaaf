//! Go's `time.Duration.String`, for headers Traefik fills with it (`X-Retry-In`).

use std::time::Duration;

/// `1.5s`, `499.999ms`, `1m0.25s`, `2h0m0s`: Go's shortest exact form.
pub(crate) fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 6));
    }
    let whole_seconds = nanos / 1_000_000_000;
    let seconds = format!(
        "{}s",
        fraction(
            whole_seconds % 60 * 1_000_000_000 + nanos % 1_000_000_000,
            9
        )
    );
    let minutes = whole_seconds / 60;
    if minutes == 0 {
        return seconds;
    }
    let hours = minutes / 60;
    if hours == 0 {
        return format!("{minutes}m{seconds}");
    }
    format!("{hours}h{}m{seconds}", minutes % 60)
}

/// `value / 10^precision` with the fraction's trailing zeros (and a bare point) dropped.
fn fraction(value: u128, precision: u32) -> String {
    let unit = 10u128.pow(precision);
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(499_999), "499.999ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(61), "1m1s"),
            (Duration::from_millis(60_250), "1m0.25s"),
            (Duration::from_secs(7_200), "2h0m0s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(format(duration), expected);
        }
    }
}
