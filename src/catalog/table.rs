//! Reading one `vms.csv` in broker's catalog schema (documented in `catalogs/README.md`).
//!
//! The converter guarantees that no field holds a comma or a quote, so rows are split on commas
//! by hand: on the full catalog this is several times faster than a general CSV reader, and
//! start-up time is what `broker cost` is judged by.

use std::borrow::Cow;

use broker_provider::{Accelerator, Arch, Cloud, Location, Offer};

use super::CatalogError;

/// The header every table must start with, in this order.
pub const HEADER: &str =
    "instance_type,accelerator,accelerator_count,vcpus,memory_gib,price,spot_price,region,zone,arch";

const COLUMNS: usize = 10;

/// Parses `text` into offers, appending to `out`.
///
/// `intern` turns a field into the string the offer keeps: a borrow for the embedded tables,
/// an owned copy for files read at run time. With `accelerator`, only rows of that accelerator
/// (ignoring case) are parsed; the others are skipped after reading two fields, which is what
/// keeps `broker cost A100:8` fast on a catalog of a hundred thousand rows.
pub(crate) fn parse<'t>(
    cloud: Cloud,
    source: &str,
    text: &'t str,
    intern: impl Fn(&'t str) -> Cow<'static, str>,
    accelerator: Option<&str>,
    out: &mut Vec<Offer>,
) -> Result<usize, CatalogError> {
    let mut lines = text.lines().enumerate();
    let bad = |line: usize, message: String| CatalogError::Format {
        file: source.to_owned(),
        line: line + 1,
        message,
    };
    match lines.next() {
        Some((_, header)) if header.trim_end() == HEADER => {}
        Some((i, header)) => {
            return Err(bad(i, format!("expected header `{HEADER}`, found `{header}`")));
        }
        None => return Err(bad(0, "file is empty".to_owned())),
    }
    let before = out.len();
    for (i, line) in lines {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if let Some(wanted) = accelerator
            && !line
                .split(',')
                .nth(1)
                .is_some_and(|acc| acc.eq_ignore_ascii_case(wanted))
        {
            continue;
        }
        let mut fields = [""; COLUMNS];
        let mut count = 0;
        for field in line.split(',') {
            if count == COLUMNS {
                return Err(bad(i, format!("more than {COLUMNS} fields")));
            }
            fields[count] = field;
            count += 1;
        }
        if count != COLUMNS {
            return Err(bad(i, format!("expected {COLUMNS} fields, found {count}")));
        }
        let [
            instance_type,
            accelerator,
            accelerator_count,
            vcpus,
            memory,
            price,
            spot,
            region,
            zone,
            arch,
        ] = fields;
        let number = |column: &str, value: &str| -> Result<Option<f64>, CatalogError> {
            if value.is_empty() {
                return Ok(None);
            }
            match value.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
                _ => Err(bad(i, format!("`{column}` is not a non-negative number: `{value}`"))),
            }
        };
        if instance_type.is_empty() || region.is_empty() {
            return Err(bad(i, "`instance_type` and `region` must not be empty".to_owned()));
        }
        let accelerator = if accelerator.is_empty() {
            None
        } else {
            let count = number("accelerator_count", accelerator_count)?
                .ok_or_else(|| bad(i, "`accelerator_count` is empty but `accelerator` is not".to_owned()))?;
            Some(Accelerator {
                name: intern(accelerator),
                count,
            })
        };
        let arch = match arch {
            "" | "x86_64" => Arch::X86_64,
            "arm64" => Arch::Arm64,
            other => return Err(bad(i, format!("unknown `arch` `{other}`"))),
        };
        out.push(Offer {
            cloud,
            instance_type: intern(instance_type),
            accelerator,
            vcpus: number("vcpus", vcpus)?,
            memory_gib: number("memory_gib", memory)?,
            price: number("price", price)?,
            spot_price: number("spot_price", spot)?,
            location: Location {
                region: intern(region),
                zone: if zone.is_empty() { None } else { Some(intern(zone)) },
            },
            arch,
        });
    }
    Ok(out.len() - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &'static str) -> Result<Vec<Offer>, CatalogError> {
        let mut out = Vec::new();
        parse(Cloud::Aws, "test.csv", text, Cow::Borrowed, None, &mut out)?;
        Ok(out)
    }

    #[test]
    fn reads_rows_with_empty_meaning_absent() {
        let text = "instance_type,accelerator,accelerator_count,vcpus,memory_gib,price,spot_price,region,zone,arch\n\
                    p4d.24xlarge,A100,8,96,1152,32.7726,,us-east-1,use1-az1,x86_64\n\
                    m6i.large,,,2,8,0.096,0.04,eu-west-1,,\n";
        let offers = parse_str(text).unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(
            offers[0].accelerator.as_ref().map(|a| (a.name.as_ref(), a.count)),
            Some(("A100", 8.0))
        );
        assert_eq!(offers[0].spot_price, None);
        assert_eq!(offers[1].location.zone, None);
        assert_eq!(offers[1].spot_price, Some(0.04));
        let mut only_a100 = Vec::new();
        parse(
            Cloud::Aws,
            "test.csv",
            text,
            Cow::Borrowed,
            Some("a100"),
            &mut only_a100,
        )
        .unwrap();
        assert_eq!(only_a100, offers[..1]);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let text = "instance_type,accelerator,accelerator_count,vcpus,memory_gib,price,spot_price,region,zone,arch\n\
                    m6i.large,,,2,8,cheap,,eu-west-1,,\n";
        let err = parse_str(text).unwrap_err().to_string();
        assert_eq!(err, "test.csv:2: `price` is not a non-negative number: `cheap`");
        assert!(parse_str("nope\n").unwrap_err().to_string().contains("expected header"));
        let short =
            "instance_type,accelerator,accelerator_count,vcpus,memory_gib,price,spot_price,region,zone,arch\na,b\n";
        assert!(
            parse_str(short)
                .unwrap_err()
                .to_string()
                .contains("expected 10 fields, found 2")
        );
    }
}
