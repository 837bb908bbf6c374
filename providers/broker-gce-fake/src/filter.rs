//! The `filter` query parameter of Compute's list methods.
//!
//! Two syntaxes, as the API documents them:
//! - AIP-160: restrictions `field OP value` with `=`, `!=`, `:`, `<`, `<=`, `>`, `>=`; juxtaposed
//!   restrictions are joined by AND; `AND`, `OR`, `NOT` and a leading `-`; parentheses. As in AIP-160,
//!   `OR` binds tighter than `AND`. `field:*` means "has a value", `labels:key` "has that label".
//! - Compute's older regular-expression form, `field eq 'regex'` / `field ne 'regex'`, where the
//!   regex must match the whole value.
//!
//! Field paths are dotted JSON names (`labels.broker-cluster`, `scheduling.provisioningModel`);
//! their first segment must be a property of the listed resource, so a typo is a 400 and not an
//! empty list that looks like "nothing to clean up".

use regex::Regex;
use serde_json::Value;

/// A parsed filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Vec<Self>),
    Or(Vec<Self>),
    Not(Box<Self>),
    Restriction { field: String, op: Op, value: String },
    Regex { field: String, regex: Regex, negate: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Has,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Op(Op),
    Word(String),
    Quoted(String),
}

/// Parses `text`; `known_field` says whether a top-level field name exists on the resource.
pub(crate) fn parse(text: &str, known_field: &dyn Fn(&str) -> bool) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        known_field,
    };
    if parser.tokens.is_empty() {
        return Ok(Filter::And(Vec::new()));
    }
    let filter = parser.expression()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(filter),
        Some(token) => Err(format!("unexpected {token:?}")),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '"' | '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".to_owned()),
                        Some('\\') => {
                            if let Some(&escaped) = chars.get(i + 1) {
                                value.push(escaped);
                            }
                            i += 2;
                        }
                        Some(&end) if end == c => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            '=' | ':' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('=', _) => (Op::Eq, 1),
                    (':', _) => (Op::Has, 1),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err("`!` must be followed by `=`".to_owned()),
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()\"'=:!<>".contains(chars[i]) {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    known_field: &'a dyn Fn(&str) -> bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    /// `sequence {AND sequence}`
    fn expression(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.sequence()?];
        while self.peek_word("AND") {
            self.pos += 1;
            parts.push(self.sequence()?);
        }
        Ok(flatten(parts, Filter::And))
    }

    /// `factor {factor}`: juxtaposition is AND.
    fn sequence(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.factor()?];
        while let Some(token) = self.peek() {
            if matches!(token, Token::Close) || self.peek_word("AND") {
                break;
            }
            parts.push(self.factor()?);
        }
        Ok(flatten(parts, Filter::And))
    }

    /// `term {OR term}`
    fn factor(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.term()?];
        while self.peek_word("OR") {
            self.pos += 1;
            parts.push(self.term()?);
        }
        Ok(flatten(parts, Filter::Or))
    }

    /// `[NOT | -] simple`
    fn term(&mut self) -> Result<Filter, String> {
        if self.peek_word("NOT") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.simple()?)));
        }
        if let Some(Token::Word(word)) = self.peek()
            && word.len() > 1
            && let Some(rest) = word.strip_prefix('-')
        {
            let rest = rest.to_owned();
            self.tokens[self.pos] = Token::Word(rest);
            return Ok(Filter::Not(Box::new(self.simple()?)));
        }
        self.simple()
    }

    fn simple(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.expression()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("missing `)`".to_owned()),
                }
            }
            Some(Token::Word(field)) if !matches!(field.as_str(), "AND" | "OR" | "NOT") => self.restriction(field),
            other => Err(format!("expected a field name, found {other:?}")),
        }
    }

    fn restriction(&mut self, field: String) -> Result<Filter, String> {
        let top = field.split('.').next().unwrap_or_default();
        if !(self.known_field)(top) {
            return Err(format!("unknown field `{top}`"));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => Some(op),
            Some(Token::Word(word)) if word == "eq" || word == "ne" => {
                let negate = word == "ne";
                let pattern = self.value()?;
                let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad regex: {e}"))?;
                return Ok(Filter::Regex { field, regex, negate });
            }
            _ => None,
        };
        let op = op.ok_or_else(|| format!("`{field}` needs a comparison such as `=`"))?;
        let value = self.value()?;
        Ok(Filter::Restriction { field, op, value })
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(value) | Token::Quoted(value)) => Ok(value),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

fn flatten(mut parts: Vec<Filter>, combine: fn(Vec<Filter>) -> Filter) -> Filter {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        combine(parts)
    }
}

impl Filter {
    pub(crate) fn matches(&self, resource: &Value) -> bool {
        match self {
            Self::And(parts) => parts.iter().all(|p| p.matches(resource)),
            Self::Or(parts) => parts.iter().any(|p| p.matches(resource)),
            Self::Not(inner) => !inner.matches(resource),
            Self::Restriction { field, op, value } => restriction_matches(resource, field, *op, value),
            Self::Regex { field, regex, negate } => {
                let found = lookup(resource, field)
                    .iter()
                    .any(|v| scalar(v).is_some_and(|s| regex.is_match(&s)));
                found != *negate
            }
        }
    }
}

fn restriction_matches(resource: &Value, field: &str, op: Op, value: &str) -> bool {
    if op == Op::Has {
        // `labels:key` asks for the key; `field:*` for any value.
        if value == "*" {
            return !lookup(resource, field).is_empty();
        }
        if lookup(resource, field).iter().any(|v| v.is_object()) {
            return !lookup(resource, &format!("{field}.{value}")).is_empty();
        }
        return lookup(resource, field)
            .iter()
            .any(|v| scalar(v).is_some_and(|s| s == value));
    }
    if op == Op::Ne {
        return !restriction_matches(resource, field, Op::Eq, value);
    }
    lookup(resource, field).iter().any(|found| {
        let Some(found) = scalar(found) else { return false };
        match op {
            Op::Eq => found == value || last_segment(&found) == value,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let ordering = match (found.parse::<f64>(), value.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(found.as_str().cmp(value)),
                };
                ordering.is_some_and(|o| match op {
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                    Op::Gt => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
            Op::Ne | Op::Has => false,
        }
    })
}

/// `zone = us-central1-a` should match a zone URL: Compute compares URL fields by name too.
fn last_segment(text: &str) -> &str {
    if text.starts_with("http") {
        text.rsplit('/').next().unwrap_or(text)
    } else {
        text
    }
}

/// Every value at a dotted path; arrays along the way fan out.
fn lookup<'v>(resource: &'v Value, field: &str) -> Vec<&'v Value> {
    let mut current = vec![resource];
    for segment in field.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value {
                Value::Object(map) => {
                    if let Some(child) = map.get(segment) {
                        next.push(child);
                    }
                }
                Value::Array(items) => {
                    for item in items {
                        if let Some(child) = item.get(segment) {
                            next.push(child);
                        }
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        })
        .collect()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn instance(name: &str, status: &str, labels: &Value) -> Value {
        json!({"name": name, "status": status, "labels": labels,
               "zone": "http://127.0.0.1:1/compute/v1/projects/p/zones/us-central1-a",
               "scheduling": {"preemptible": false}})
    }

    fn known(field: &str) -> bool {
        ["name", "status", "labels", "zone", "scheduling"].contains(&field)
    }

    fn matches(filter: &str, resource: &Value) -> bool {
        parse(filter, &known).unwrap().matches(resource)
    }

    #[test]
    fn label_equality_and_conjunctions() {
        let a = instance(
            "brk-a",
            "RUNNING",
            &json!({"broker-cluster": "x", "broker-managed": "1"}),
        );
        let b = instance(
            "brk-b",
            "TERMINATED",
            &json!({"broker-cluster": "y", "broker-managed": "1"}),
        );
        let c = instance("other", "RUNNING", &json!({}));
        let f = r#"labels.broker-cluster = "x""#;
        assert!(matches(f, &a) && !matches(f, &b) && !matches(f, &c));
        let f = r#"(labels.broker-managed = "1") AND (status != "TERMINATED")"#;
        assert!(matches(f, &a) && !matches(f, &b) && !matches(f, &c));
        let f = "(labels.broker-managed = 1) (name != brk-a)";
        assert!(!matches(f, &a) && matches(f, &b) && !matches(f, &c));
        let f = r#"((labels.broker-cluster = "x") OR (labels.broker-cluster = "y")) AND labels.broker-managed = "1""#;
        assert!(matches(f, &a) && matches(f, &b) && !matches(f, &c));
    }

    #[test]
    fn presence_negation_and_regex() {
        let a = instance("brk-a", "RUNNING", &json!({"broker-managed": "1"}));
        let c = instance("other", "RUNNING", &json!({}));
        assert!(matches("labels:broker-managed", &a) && !matches("labels:broker-managed", &c));
        assert!(matches("labels.broker-managed:*", &a) && !matches("labels.broker-managed:*", &c));
        assert!(!matches("-labels.broker-managed:*", &a) && matches("NOT labels.broker-managed:*", &c));
        assert!(matches("name eq 'brk-.*'", &a) && !matches("name eq 'brk-.*'", &c));
        assert!(matches("name ne brk-.*", &c));
        assert!(matches("zone = us-central1-a", &a));
        assert!(matches("scheduling.preemptible = false", &a));
    }

    #[test]
    fn refuses_malformed_filters() {
        for bad in [
            "labels.x =",
            "(status = RUNNING",
            "status",
            "label.x = y",
            "= x",
            "status ! x",
            "name = \"x",
        ] {
            assert!(parse(bad, &known).is_err(), "{bad}");
        }
        assert!(parse("", &known).unwrap().matches(&json!({})));
    }
}
