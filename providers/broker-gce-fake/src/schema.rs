//! Checks a JSON request body against a schema of the discovery document.
//!
//! Stricter than Google's front end in one way, on purpose: the discovery document types int64
//! and uint64 as JSON strings, and so does this check, although the real API also takes numbers
//! there. Bodies that pass here are what the document promises will work.
//!
//! Paths in messages use the proto field names Google's JSON front end reports
//! (`resource.disks[0].initialize_params.disk_size_gb`), so a failure reads like a real one.

use serde_json::Value;

use crate::discovery::Discovery;

/// One way a body breaks the schema: the field path and the message the API gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) field: String,
    pub(crate) message: String,
}

/// Every violation of `schema` (a schema id such as `Instance`) in `body`, sent to the method
/// `method_id` (for `annotations.required`). The root field is called `resource`.
pub(crate) fn validate_body(discovery: &Discovery, method_id: &str, schema: &str, body: &Value) -> Vec<Violation> {
    let mut walker = Walker {
        discovery,
        method_id,
        violations: Vec::new(),
    };
    walker.walk(
        &serde_json::json!({ "$ref": schema }),
        schema,
        "resource",
        body,
        "resource",
    );
    walker.violations
}

struct Walker<'a> {
    discovery: &'a Discovery,
    method_id: &'a str,
    violations: Vec<Violation>,
}

impl Walker<'_> {
    /// `type_name` is the message type that owns this field (for enum type names); `json_name`
    /// is the field's name as sent.
    fn walk(&mut self, schema: &Value, type_name: &str, path: &str, value: &Value, json_name: &str) {
        let (schema, type_name) = match schema.get("$ref").and_then(Value::as_str) {
            Some(name) => {
                let Some(resolved) = self.discovery.schema(name) else {
                    self.violation(
                        path,
                        format!("the discovery document has no schema `{name}` (fake bug)"),
                    );
                    return;
                };
                (resolved, name)
            }
            None => (schema, type_name),
        };
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => self.object(schema, type_name, path, value),
            Some("array") => self.array(schema, type_name, path, value, json_name),
            Some("string") => self.string(schema, type_name, path, value, json_name),
            Some("integer") => self.integer(schema, path, value),
            Some("number") if !value.is_number() => self.wrong_type(path, "TYPE_DOUBLE", value),
            Some("boolean") if !value.is_boolean() => self.wrong_type(path, "TYPE_BOOL", value),
            // `any`, or a schema without a type: nothing to check.
            _ => {}
        }
    }

    fn object(&mut self, schema: &Value, type_name: &str, path: &str, value: &Value) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let Some(map) = value.as_object() else {
            let expected = if properties.is_none() && additional.is_some() {
                "map<string, ...>".to_owned()
            } else {
                format!("type.googleapis.com/google.cloud.compute.v1.{type_name}")
            };
            self.wrong_type(path, &expected, value);
            return;
        };
        for (key, child) in map {
            if let Some(property) = properties.and_then(|p| p.get(key)) {
                // A JSON null is the proto3 default: the field counts as absent.
                if child.is_null() {
                    continue;
                }
                let child_type = if property.get("properties").is_some() {
                    format!("{type_name}.{}", pascal_case(key))
                } else {
                    type_name.to_owned()
                };
                self.walk(
                    property,
                    &child_type,
                    &format!("{path}.{}", snake_case(key)),
                    child,
                    key,
                );
            } else if let Some(additional) = additional {
                self.walk(additional, type_name, &format!("{path}[{key}]"), child, key);
            } else {
                self.violation(
                    path,
                    format!("Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."),
                );
            }
        }
        for (key, property) in properties.into_iter().flatten() {
            if self.is_required(property) && map.get(key).is_none_or(Value::is_null) {
                let field = format!("{path}.{}", snake_case(key));
                self.violation(&field, format!("Required field '{field}' not specified"));
            }
        }
    }

    fn array(&mut self, schema: &Value, type_name: &str, path: &str, value: &Value, json_name: &str) {
        let Some(items) = value.as_array() else {
            self.wrong_type(path, "a JSON array (repeated field)", value);
            return;
        };
        let item_schema = schema.get("items").unwrap_or(&Value::Null);
        // `Tags.items` puts its `pattern` on the array; it applies to each element.
        let pattern = schema.get("pattern").and_then(Value::as_str);
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if item.is_null() {
                self.violation(
                    &item_path,
                    format!("Invalid value at '{item_path}': null is not a list element"),
                );
                continue;
            }
            let item_type = if item_schema.get("properties").is_some() {
                format!("{type_name}.{}", pascal_case(json_name))
            } else {
                type_name.to_owned()
            };
            self.walk(item_schema, &item_type, &item_path, item, json_name);
            if let (Some(pattern), Some(text)) = (pattern, item.as_str()) {
                self.check_pattern(&item_path, pattern, text);
            }
        }
    }

    fn string(&mut self, schema: &Value, type_name: &str, path: &str, value: &Value, json_name: &str) {
        let format = schema.get("format").and_then(Value::as_str);
        let Some(text) = value.as_str() else {
            let expected = match format {
                Some("int64") => "TYPE_INT64",
                Some("uint64") => "TYPE_UINT64",
                Some("byte") => "TYPE_BYTES",
                _ if schema.get("enum").is_some() => "TYPE_ENUM",
                _ => "TYPE_STRING",
            };
            self.wrong_type(path, expected, value);
            return;
        };
        let well_formed = match format {
            Some("int64") => text.parse::<i64>().is_ok(),
            Some("uint64") => text.parse::<u64>().is_ok(),
            Some("byte") => is_base64(text),
            _ => true,
        };
        if !well_formed {
            let expected = match format {
                Some("int64") => "TYPE_INT64",
                Some("uint64") => "TYPE_UINT64",
                _ => "TYPE_BYTES",
            };
            self.wrong_type(path, expected, value);
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.iter().any(|a| a.as_str() == Some(text))
        {
            let enum_type = format!(
                "type.googleapis.com/google.cloud.compute.v1.{type_name}.{}",
                pascal_case(json_name)
            );
            self.violation(path, format!("Invalid value at '{path}' ({enum_type}), \"{text}\""));
            return;
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            self.check_pattern(path, pattern, text);
        }
    }

    fn integer(&mut self, schema: &Value, path: &str, value: &Value) {
        let format = schema.get("format").and_then(Value::as_str);
        let (expected, fits) = match format {
            Some("uint32") => ("TYPE_UINT32", value.as_u64().is_some_and(|n| u32::try_from(n).is_ok())),
            _ => ("TYPE_INT32", value.as_i64().is_some_and(|n| i32::try_from(n).is_ok())),
        };
        if !fits {
            self.wrong_type(path, expected, value);
        }
    }

    fn check_pattern(&mut self, path: &str, pattern: &str, text: &str) {
        if let Some(regex) = self.discovery.pattern(pattern)
            && !regex.is_match(text)
        {
            self.violation(
                path,
                format!("Invalid value for field '{path}': '{text}'. Must be a match of regex '(?:{pattern})'"),
            );
        }
    }

    fn is_required(&self, property: &Value) -> bool {
        property
            .pointer("/annotations/required")
            .and_then(Value::as_array)
            .is_some_and(|methods| methods.iter().any(|m| m.as_str() == Some(self.method_id)))
    }

    fn wrong_type(&mut self, path: &str, expected: &str, value: &Value) {
        self.violation(
            path,
            format!("Invalid value at '{path}' ({expected}), {}", excerpt(value)),
        );
    }

    fn violation(&mut self, field: &str, message: String) {
        self.violations.push(Violation {
            field: field.to_owned(),
            message,
        });
    }
}

/// A value as it appears in a message, cut short.
pub(crate) fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn is_base64(text: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    STANDARD.decode(text).is_ok() || URL_SAFE.decode(text).is_ok()
}

/// `diskSizeGb` → `disk_size_gb`, `IPProtocol` → `ip_protocol`, `natIP` → `nat_ip`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(char::is_ascii_lowercase),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `provisioningModel` → `ProvisioningModel`.
fn pascal_case(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_json_names_to_proto_names() {
        assert_eq!(snake_case("diskSizeGb"), "disk_size_gb");
        assert_eq!(snake_case("IPProtocol"), "ip_protocol");
        assert_eq!(snake_case("natIP"), "nat_ip");
        assert_eq!(snake_case("networkIP"), "network_ip");
        assert_eq!(snake_case("name"), "name");
        assert_eq!(pascal_case("provisioningModel"), "ProvisioningModel");
    }

    #[test]
    fn cuts_long_values() {
        let long = Value::String("x".repeat(100));
        assert!(excerpt(&long).ends_with("..."));
        assert_eq!(excerpt(&serde_json::json!(100)), "100");
    }
}
