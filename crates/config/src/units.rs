//! Text forms of durations (`500ms`, `2s`, `1m30s`) and byte sizes
//! (`4096`, `16KiB`, `64M`).

use std::time::Duration;

/// The longest duration accepted anywhere in the configuration. Keeps
/// `Instant + duration` far from overflowing in the code that uses it.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

const DURATION_UNITS: &[(&str, u128)] = &[
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// Parses one or more `<integer><unit>` parts (`us`, `ms`, `s`, `m`, `h`),
/// for example `250ms`, `2s`, `1m30s`. A unit is required.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: expected a number with a unit, like 500ms or 2s".into());
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "invalid duration '{text}': expected a whole number followed by a unit (us, ms, s, m, h), like 500ms"
            ));
        }
        let (digits, after) = rest.split_at(digits_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!(
                "duration '{text}' needs a unit (us, ms, s, m, h), like {digits}ms or {digits}s"
            ));
        }
        let Some(&(_, nanos_per_unit)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit)
        else {
            return Err(format!(
                "invalid duration '{text}': unknown unit '{unit}' (use us, ms, s, m or h)"
            ));
        };
        let amount: u128 = digits
            .parse()
            .map_err(|_| format!("duration '{text}' is too large"))?;
        total_nanos = amount
            .checked_mul(nanos_per_unit)
            .and_then(|n| n.checked_add(total_nanos))
            .ok_or_else(|| format!("duration '{text}' is too large"))?;
        rest = next;
    }
    if total_nanos > MAX_DURATION.as_nanos() {
        return Err(format!(
            "duration '{text}' is longer than the maximum of 24h"
        ));
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| format!("duration '{text}' is too large"))?;
    // The remainder is below 1e9 and so fits in u32.
    let sub_nanos = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, sub_nanos))
}

/// The shortest text form that [`parse_duration`] reads back exactly:
/// `500ms`, `2s`, `1m30s`, `250us`.
pub fn format_duration(duration: Duration) -> String {
    let mut micros = duration.as_micros();
    if micros == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, per) in [
        ("h", 3_600_000_000u128),
        ("m", 60_000_000),
        ("s", 1_000_000),
    ] {
        if micros >= per {
            out.push_str(&format!("{}{unit}", micros / per));
            micros %= per;
        }
    }
    if micros > 0 {
        if micros % 1_000 == 0 {
            out.push_str(&format!("{}ms", micros / 1_000));
        } else {
            out.push_str(&format!("{micros}us"));
        }
    }
    out
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
];

/// Parses a byte size: a plain integer (bytes) or an integer followed by a
/// unit. All units are powers of 1024, as in MySQL option files:
/// `K`/`KB`/`KiB`, `M`/`MB`/`MiB`, `G`/`GB`/`GiB` (any letter case), `B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err(format!(
            "invalid size '{text}': expected a whole number of bytes or a number with a unit, like 16KiB or 64MiB"
        ));
    }
    let (digits, unit) = text.split_at(digits_end);
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        match SIZE_UNITS.iter().find(|(name, _)| *name == unit) {
            Some(&(_, m)) => m,
            None => {
                return Err(format!(
                    "invalid size '{text}': unknown unit (use B, KiB, MiB or GiB)"
                ))
            }
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// The exact text form of a byte size, using the largest unit that divides
/// it: `64MiB`, `1500`.
pub fn format_size(bytes: u64) -> String {
    for (unit, per) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= per && bytes % per == 0 {
            return format!("{}{unit}", bytes / per);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_each_unit_and_compounds() {
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn durations_require_a_known_unit() {
        assert!(parse_duration("500").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5 s").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("1.5s").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn durations_have_a_ceiling_and_never_overflow() {
        assert_eq!(parse_duration("24h").unwrap(), MAX_DURATION);
        assert!(parse_duration("25h").unwrap_err().contains("maximum"));
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
        assert!(parse_duration("340282366920938463463374607431768211455h").is_err());
    }

    #[test]
    fn durations_format_round_trip() {
        for text in [
            "250us", "500ms", "2s", "1m30s", "1h", "1h0m1s", "1s500ms", "0s",
        ] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(
                parse_duration(&format_duration(parsed)).unwrap(),
                parsed,
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn sizes_parse_plain_and_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("16KiB").unwrap(), 16 * 1024);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("7B").unwrap(), 7);
    }

    #[test]
    fn sizes_reject_garbage_and_overflow() {
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12TiB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_size("99999999999999999999GiB")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size("17179869184GiB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes_format_with_largest_exact_unit() {
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(2048), "2KiB");
    }
}
