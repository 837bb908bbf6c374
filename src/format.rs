//! Number formatting shared by tables, messages and JSON-free text output.

/// Formats a count or size without a trailing `.0` (`8`, `0.5`, `1.125`).
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        let s = format!("{n:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Formats a price in USD with enough digits for cheap CPU instances (`$0.0416`, `$32.77`).
pub fn usd(n: f64) -> String {
    if n >= 100.0 {
        format!("${n:.2}")
    } else if n >= 1.0 {
        format!("${n:.3}")
    } else {
        format!("${n:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(number(8.0), "8");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.125), "0.125");
        assert_eq!(number(0.167), "0.167");
    }

    #[test]
    fn prices_keep_significant_digits() {
        assert_eq!(usd(32.7726), "$32.773");
        assert_eq!(usd(0.0416), "$0.0416");
        assert_eq!(usd(123.456), "$123.46");
    }
}
