//! Durations as people write them on a command line: `45m`, `2h`, `90s`, `1h30m`, `1d`.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses `text`; a bare number is minutes (SkyPilot's `-i 10` idle minutes read the same way).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is needed, such as `45m` or `2h`".into());
    }
    if let Ok(minutes) = text.parse::<u64>() {
        return minutes
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("`{text}`: unknown unit `{c}`; use s, m, h or d (e.g. `1h30m`)")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}`: a number must come before `{c}`"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("`{text}` is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{text}`: `{digits}` has no unit; use s, m, h or d (e.g. `45m`)"
        ));
    }
    if total == 0 {
        return Err(format!("`{text}` is zero; give a positive duration"));
    }
    Ok(Duration::from_secs(total))
}

/// Formats `d` the way [`parse`] reads it (`1h30m`, `20s`).
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        let _ = write!(out, "{secs}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations() {
        assert_eq!(parse("45m").unwrap(), Duration::from_mins(45));
        assert_eq!(parse("2h").unwrap(), Duration::from_hours(2));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_mins(90));
        assert_eq!(parse("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(
            parse("10").unwrap(),
            Duration::from_mins(10),
            "bare numbers are minutes"
        );
        assert_eq!(format(Duration::from_mins(90)), "1h30m");
        assert_eq!(format(Duration::from_secs(20)), "20s");
    }

    #[test]
    fn mistakes_say_what_to_write() {
        assert!(parse("").is_err());
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("5x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("1h30").unwrap_err().contains("has no unit"));
        assert!(parse("h").unwrap_err().contains("number must come before"));
        assert!(parse("99999999999999999999d").is_err());
    }
}
