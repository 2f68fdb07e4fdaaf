//! Go-style durations as Traefik reads them: `"10s"`, `"1m30s"`, `"250ms"`, or a bare
//! integer meaning seconds (`10`, `"10"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration read from configuration. Negative values are allowed where Traefik allows
/// them (e.g. `flushInterval: -1`), so the sign is kept separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GoDuration {
    pub negative: bool,
    pub value: Duration,
}

impl GoDuration {
    pub const ZERO: GoDuration = GoDuration {
        negative: false,
        value: Duration::ZERO,
    };

    pub const fn from_secs(secs: u64) -> Self {
        GoDuration {
            negative: false,
            value: Duration::from_secs(secs),
        }
    }

    pub const fn from_millis(ms: u64) -> Self {
        GoDuration {
            negative: false,
            value: Duration::from_millis(ms),
        }
    }

    /// The duration if positive, `None` for zero or negative (Traefik's "disabled").
    pub fn positive(self) -> Option<Duration> {
        (!self.negative && !self.value.is_zero()).then_some(self.value)
    }

    pub fn is_negative(self) -> bool {
        self.negative && !self.value.is_zero()
    }
}

/// Parses Go's `time.ParseDuration` syntax, plus a bare integer as seconds.
pub fn parse_go_duration(text: &str) -> Result<GoDuration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(GoDuration {
            negative: secs < 0,
            value: Duration::from_secs(secs.unsigned_abs()),
        });
    }
    let (negative, mut rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(GoDuration::ZERO);
    }
    let mut total_nanos: f64 = 0.0;
    if rest.is_empty() {
        return Err(format!("invalid duration {text:?}"));
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let number: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total_nanos += number * unit;
        rest = &rest[unit_end..];
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(GoDuration {
        negative,
        value: Duration::from_nanos(total_nanos as u64),
    })
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_negative() {
            f.write_str("-")?;
        }
        let nanos = self.value.as_nanos();
        if nanos == 0 {
            f.write_str("0s")
        } else if nanos.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", nanos / 1_000_000_000)
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{}ms", nanos / 1_000_000)
        } else {
            write!(f, "{nanos}ns")
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\", \"1m30s\" or a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                Ok(GoDuration {
                    negative: v < 0,
                    value: Duration::from_secs(v.unsigned_abs()),
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                Ok(GoDuration::from_secs(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GoDuration, E> {
                if !v.is_finite() {
                    return Err(E::custom("duration must be finite"));
                }
                Ok(GoDuration {
                    negative: v < 0.0,
                    value: Duration::from_secs_f64(v.abs()),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                parse_go_duration(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax_and_bare_seconds() {
        assert_eq!(parse_go_duration("10s").unwrap(), GoDuration::from_secs(10));
        assert_eq!(
            parse_go_duration("1m30s").unwrap(),
            GoDuration::from_secs(90)
        );
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            GoDuration::from_millis(250)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            GoDuration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("42").unwrap(), GoDuration::from_secs(42));
        assert_eq!(parse_go_duration("0").unwrap(), GoDuration::ZERO);
        let neg = parse_go_duration("-1s").unwrap();
        assert!(neg.is_negative());
        assert_eq!(neg.positive(), None);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10", "10x", "1..2s", "ms10"] {
            if bad == "10" {
                continue;
            }
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
    }
}
