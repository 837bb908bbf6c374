//! Checks path and query parameters against a method of the discovery document: unknown query
//! parameters, types (`boolean`, `uint32` with its `minimum`, int64 strings), `enum`s, `pattern`s,
//! plus the rules the descriptions state in prose (`requestId` is a non-zero UUID, `maxResults`
//! is at most 500).

use serde_json::Value;

use crate::discovery::Discovery;
use crate::schema::Violation;

/// The query parameters of one request, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: raw
                .map(|raw| form_urlencoded::parse(raw.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        }
    }

    /// The last value of `name` (later values win, as in Google's front end).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every violation in the path parameters (`(name, value)`) and `query` of a call to `method`.
pub(crate) fn validate(
    discovery: &Discovery,
    method: &Value,
    path_params: &[(&str, &str)],
    query: &Query,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let parameters = method.get("parameters").and_then(Value::as_object);
    for (name, value) in path_params {
        let pattern = parameters
            .and_then(|p| p.get(*name))
            .and_then(|p| p.get("pattern"))
            .and_then(Value::as_str);
        if let Some(pattern) = pattern
            && discovery.pattern(pattern).is_some_and(|regex| !regex.is_match(value))
        {
            violations.push(Violation {
                field: (*name).to_owned(),
                message: format!(
                    "Invalid value '{value}'. Values must match the following regular expression: '{pattern}'"
                ),
            });
        }
    }
    let accepts_partial_success = method
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.ends_with(".aggregatedList"));
    for (name, value) in &query.pairs {
        let own = parameters
            .and_then(|p| p.get(name))
            .filter(|p| p.get("location").and_then(Value::as_str) == Some("query"));
        let Some(spec) = own.or_else(|| discovery.global_parameters().get(name)) else {
            // The v1 document recommends `returnPartialSuccess=true` in every aggregatedList
            // description without declaring it; the API takes it, so the fake does too.
            if accepts_partial_success && name == "returnPartialSuccess" {
                if value != "true" && value != "false" {
                    violations.push(wrong_type(name, "TYPE_BOOL", value));
                }
                continue;
            }
            violations.push(Violation {
                field: name.clone(),
                message: format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field \
                     '{name}' could not be found in request message."
                ),
            });
            continue;
        };
        if let Some(violation) = check_value(discovery, name, spec, value) {
            violations.push(violation);
        }
    }
    violations
}

fn check_value(discovery: &Discovery, name: &str, spec: &Value, value: &str) -> Option<Violation> {
    let format = spec.get("format").and_then(Value::as_str);
    match (spec.get("type").and_then(Value::as_str), format) {
        (Some("boolean"), _) if value != "true" && value != "false" => {
            return Some(wrong_type(name, "TYPE_BOOL", value));
        }
        (Some("integer"), Some("uint32")) => {
            let Ok(number) = value.parse::<u32>() else {
                return Some(wrong_type(name, "TYPE_UINT32", value));
            };
            let minimum = spec
                .get("minimum")
                .and_then(Value::as_str)
                .and_then(|m| m.parse::<u32>().ok());
            if minimum.is_some_and(|m| number < m) {
                return Some(invalid_field(
                    name,
                    value,
                    "Must be greater than or equal to the minimum",
                ));
            }
        }
        (Some("integer"), _) if value.parse::<i32>().is_err() => return Some(wrong_type(name, "TYPE_INT32", value)),
        (Some("string"), Some("int64")) if value.parse::<i64>().is_err() => {
            return Some(wrong_type(name, "TYPE_INT64", value));
        }
        (Some("string"), Some("uint64")) if value.parse::<u64>().is_err() => {
            return Some(wrong_type(name, "TYPE_UINT64", value));
        }
        _ => {}
    }
    if let Some(allowed) = spec.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| a.as_str() == Some(value))
    {
        return Some(wrong_type(name, "TYPE_ENUM", value));
    }
    if let Some(pattern) = spec.get("pattern").and_then(Value::as_str)
        && discovery.pattern(pattern).is_some_and(|regex| !regex.is_match(value))
    {
        return Some(invalid_field(
            name,
            value,
            &format!("Must be a match of regex '{pattern}'"),
        ));
    }
    match name {
        "requestId" if !is_nonzero_uuid(value) => Some(invalid_field(
            name,
            value,
            "The request id must be a valid UUID with the exception that zero UUID is not supported \
             (00000000-0000-0000-0000-000000000000).",
        )),
        "maxResults" if value.parse::<u32>().is_ok_and(|n| n > 500) => {
            Some(invalid_field(name, value, "Must be less than or equal to 500"))
        }
        _ => None,
    }
}

fn wrong_type(name: &str, expected: &str, value: &str) -> Violation {
    Violation {
        field: name.to_owned(),
        message: format!("Invalid value at '{name}' ({expected}), \"{value}\""),
    }
}

/// Compute's own wording for a parameter it refuses.
pub(crate) fn invalid_field(name: &str, value: &str, why: &str) -> Violation {
    Violation {
        field: name.to_owned(),
        message: format!("Invalid value for field '{name}': '{value}'. {why}"),
    }
}

/// `8-4-4-4-12` hexadecimal digits, not all zero.
pub(crate) fn is_nonzero_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()));
    shape_ok && value.chars().any(|c| c.is_ascii_hexdigit() && c != '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_nonzero_uuids() {
        assert!(is_nonzero_uuid("3f9c2a71-1b2c-4d5e-8f90-0123456789ab"));
        assert!(is_nonzero_uuid("3F9C2A71-1B2C-4D5E-8F90-0123456789AB"));
        assert!(!is_nonzero_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_nonzero_uuid("not-a-uuid"));
        assert!(!is_nonzero_uuid("3f9c2a711b2c4d5e8f900123456789ab"));
        assert!(!is_nonzero_uuid("3f9c2a71-1b2c-4d5e-8f90-0123456789ag"));
    }

    #[test]
    fn later_query_values_win() {
        let query = Query::parse(Some("a=1&b=x%20y&a=2"));
        assert_eq!(query.get("a"), Some("2"));
        assert_eq!(query.get("b"), Some("x y"));
        assert_eq!(query.get("c"), None);
    }
}
