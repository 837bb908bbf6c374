//! Keeping a task file's secrets out of the run ledger while keeping everything else as written.
//!
//! The ledger stores a task file's text so `broker launch --from-run` can launch it again. Its
//! `secrets:` values are replaced by `null`, SkyPilot's own "supply at launch" form, which the
//! task parser fills from the environment or `--env`. The edit is made on the text, at the
//! positions saphyr reports for each value, so comments, order, quoting and layout survive.
//!
//! Positions are only trusted after a check: the edited text must load to the same document as
//! the original with its secrets set to null. When it does not (an alias whose text lives
//! elsewhere, a span saphyr got wrong), nothing is returned rather than something that might
//! still hold a secret.

use std::collections::BTreeSet;
use std::ops::Range;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, Yaml, YamlData};

const SECRETS: &str = "secrets";
const ENVS: &str = "envs";

/// `text` (a task file) with the value of every `secrets:` entry replaced by `null` and every
/// other byte unchanged; `None` when that cannot be done with certainty (text that is not YAML,
/// a `secrets` section that is not a mapping, values given through aliases).
///
/// Text without secrets comes back unchanged.
pub fn redact_secrets(text: &str) -> Option<String> {
    // saphyr counts a byte-order mark as a character; without it, its positions match `body`.
    let (bom, body) = text
        .strip_prefix('\u{feff}')
        .map_or(("", text), |rest| ("\u{feff}", rest));
    let docs = MarkedYaml::load_from_str(body).ok()?;
    let chars: Vec<usize> = body
        .char_indices()
        .map(|(byte, _)| byte)
        .chain(std::iter::once(body.len()))
        .collect();
    let mut edits = Vec::new();
    for doc in &docs {
        secret_edits(body, &chars, doc, &mut edits)?;
    }
    if edits.is_empty() {
        return Some(text.to_owned());
    }
    edits.sort_unstable_by_key(|e| e.range.start);
    if edits.windows(2).any(|w| w[0].range.end > w[1].range.start) {
        return None;
    }
    let mut out = body.to_owned();
    for edit in edits.iter().rev() {
        out.replace_range(edit.range.clone(), edit.with);
    }
    same_but_secrets(body, &out).then(|| format!("{bom}{out}"))
}

/// Replace the bytes of `range` by `with`.
struct Edit {
    range: Range<usize>,
    with: &'static str,
}

/// Keys of the task's `envs` that are not also `secrets`: values the user declared plain.
/// Empty when `text` does not load.
pub fn plain_env_keys(text: &str) -> BTreeSet<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(doc) = Yaml::load_from_str(text).ok().and_then(|docs| docs.into_iter().next()) else {
        return BTreeSet::new();
    };
    let keys = |section: &str| -> BTreeSet<String> {
        let Yaml::Mapping(map) = untag(&doc) else {
            return BTreeSet::new();
        };
        map.iter()
            .filter(|(k, _)| is_named(k, section))
            .filter_map(|(_, v)| match untag(v) {
                Yaml::Mapping(entries) => Some(entries.keys().filter_map(key_text).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let secrets = keys(SECRETS);
    keys(ENVS).into_iter().filter(|k| !secrets.contains(k)).collect()
}

/// Adds the edits that null the secret values of one document; `None` when one cannot be
/// located with certainty.
fn secret_edits(body: &str, chars: &[usize], doc: &MarkedYaml<'_>, out: &mut Vec<Edit>) -> Option<()> {
    let YamlData::Mapping(map) = untag_marked(doc) else {
        return Some(());
    };
    for (key, section) in map {
        if !matches!(untag_marked(key), YamlData::Value(Scalar::String(s)) if s == SECRETS) {
            continue;
        }
        match untag_marked(section) {
            YamlData::Value(Scalar::Null) => {}
            // An aliased section's values sit under its anchor, maybe in another section.
            YamlData::Mapping(_) if is_alias(body, chars, section)? => return None,
            YamlData::Mapping(entries) => {
                for value in entries.values() {
                    match untag_marked(value) {
                        // Nothing to hide.
                        YamlData::Value(Scalar::Null) => {}
                        YamlData::Value(Scalar::String(s)) if s.is_empty() => {}
                        _ => value_edits(body, chars, value, out)?,
                    }
                }
            }
            _ => return None,
        }
    }
    Some(())
}

/// The edits that turn one value into `null`.
///
/// saphyr's span of a block scalar (`|`, `>-`) covers its content lines only, so the indicator
/// (with any tag or anchor before it) is found on the line above and becomes `null`, and the
/// content lines go; a comment after the indicator stays.
fn value_edits(body: &str, chars: &[usize], value: &MarkedYaml<'_>, out: &mut Vec<Edit>) -> Option<()> {
    let content = trimmed(body, chars, value)?;
    // An alias (`*token`) has its text at the anchor, which may be a plain env.
    if body[content.clone()].starts_with('*') {
        return None;
    }
    let head = body[..content.start].trim_end();
    let line_from = head.rfind('\n').map_or(0, |i| i + 1);
    let line = &head[line_from..];
    let words: Vec<(usize, &str)> = words(line)
        .into_iter()
        .take_while(|(_, w)| !w.starts_with('#'))
        .collect();
    match words.last() {
        Some(&(at, indicator)) if is_block_indicator(indicator) => {
            let first = words
                .iter()
                .rposition(|(_, w)| !(w.starts_with('!') || w.starts_with('&') || is_block_indicator(w)))
                .map_or(0, |i| i + 1);
            let from = line_from + words.get(first).map_or(at, |w| w.0);
            out.push(Edit {
                range: from..line_from + at + indicator.len(),
                with: "null",
            });
            out.push(Edit {
                range: line_from + line.len()..content.end,
                with: "",
            });
        }
        _ => out.push(Edit {
            range: content,
            with: "null",
        }),
    }
    Some(())
}

/// `|`, `>`, with an optional indentation digit and chomping sign in either order.
fn is_block_indicator(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some('|' | '>')) && word.len() <= 3 && chars.all(|c| matches!(c, '1'..='9' | '+' | '-'))
}

/// The whitespace-separated words of a line, with their byte offsets.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

/// The byte range of a node's text, without surrounding whitespace (a block scalar's span runs
/// through its final line break); `None` when it is empty or out of bounds.
fn trimmed(body: &str, chars: &[usize], node: &MarkedYaml<'_>) -> Option<Range<usize>> {
    let start = *chars.get(node.span.start.index())?;
    let end = *chars.get(node.span.end.index())?;
    let text = body.get(start..end)?;
    let lead = text.len() - text.trim_start().len();
    let kept = text.trim().len();
    (kept > 0).then(|| start + lead..start + lead + kept)
}

fn is_alias(body: &str, chars: &[usize], node: &MarkedYaml<'_>) -> Option<bool> {
    let range = trimmed(body, chars, node)?;
    Some(body[range].starts_with('*'))
}

/// Whether `redacted` loads to what `original` loads to with every secret value `null`.
fn same_but_secrets(original: &str, redacted: &str) -> bool {
    let (Ok(mut expected), Ok(got)) = (Yaml::load_from_str(original), Yaml::load_from_str(redacted)) else {
        return false;
    };
    for doc in &mut expected {
        let Yaml::Mapping(map) = untag_mut(doc) else {
            continue;
        };
        for (key, section) in map.iter_mut() {
            if !is_named(key, SECRETS) {
                continue;
            }
            if let Yaml::Mapping(entries) = untag_mut(section) {
                for value in entries.values_mut() {
                    *value = Yaml::Value(Scalar::Null);
                }
            }
        }
    }
    expected == got
}

fn untag_marked<'n, 'i>(node: &'n MarkedYaml<'i>) -> &'n YamlData<'i, MarkedYaml<'i>> {
    let mut node = node;
    while let YamlData::Tagged(_, inner) = &node.data {
        node = inner;
    }
    &node.data
}

fn untag<'n, 'i>(node: &'n Yaml<'i>) -> &'n Yaml<'i> {
    let mut node = node;
    while let Yaml::Tagged(_, inner) = node {
        node = inner;
    }
    node
}

fn untag_mut<'n, 'i>(node: &'n mut Yaml<'i>) -> &'n mut Yaml<'i> {
    match node {
        Yaml::Tagged(_, inner) => untag_mut(inner),
        other => other,
    }
}

fn is_named(key: &Yaml<'_>, name: &str) -> bool {
    matches!(untag(key), Yaml::Value(Scalar::String(s)) if s == name)
}

fn key_text(key: &Yaml<'_>) -> Option<String> {
    match untag(key) {
        Yaml::Value(Scalar::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "\
# Fine-tune; the token comes from the vault.
name: finetune   # the job's name
envs:
  MODEL: llama-3   # not a secret
  EPOCHS: 3
secrets:
  HF_TOKEN: hf_abcdefSECRET1   # rotate monthly
  WANDB_KEY: 'quoted-SECRET2'
  OTHER: \"double SECRET3\"
  LATER: null
  EMPTY:
run: |
  echo $MODEL
";

    #[test]
    fn literal_secrets_become_null_and_nothing_else_changes() {
        let out = redact_secrets(TASK).unwrap();
        let expected = TASK
            .replace("hf_abcdefSECRET1", "null")
            .replace("'quoted-SECRET2'", "null")
            .replace("\"double SECRET3\"", "null");
        assert_eq!(out, expected);
        for secret in ["SECRET1", "SECRET2", "SECRET3"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("MODEL: llama-3   # not a secret"), "envs untouched");
        assert!(out.contains("HF_TOKEN: null   # rotate monthly"), "comments kept");
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        for text in [
            "run: echo hi\n",
            "name: x\nsecrets:\n",
            "name: x\nsecrets: {}\n",
            "",
            "# only a comment\n",
        ] {
            assert_eq!(redact_secrets(text).as_deref(), Some(text), "{text:?}");
        }
    }

    #[test]
    fn other_scalar_styles_tags_and_flow_mappings() {
        let cases = [
            (
                "secrets:\n  A: |\n    line one\n    line two\nrun: x\n",
                "secrets:\n  A: null\nrun: x\n",
            ),
            (
                "secrets:\n  A: >-\n    folded\n    text\n# after\nrun: x\n",
                "secrets:\n  A: null\n# after\nrun: x\n",
            ),
            (
                "secrets:\n  A: plain\n    continued\nrun: x\n",
                "secrets:\n  A: null\nrun: x\n",
            ),
            (
                "secrets: {A: one, B: \"two\"}\nrun: x\n",
                "secrets: {A: null, B: null}\nrun: x\n",
            ),
            ("secrets:\n  A: !secret tagged\n", "secrets:\n  A: null\n"),
            ("secrets:\n  A: 12345\n  B: true\n", "secrets:\n  A: null\n  B: null\n"),
            (
                "secrets:\r\n  A: crlf\r\nrun: x\r\n",
                "secrets:\r\n  A: null\r\nrun: x\r\n",
            ),
            ("\u{feff}secrets:\n  A: bom\n", "\u{feff}secrets:\n  A: null\n"),
            (
                "secrets:\n  A: \"ünïcode\"\n  B: ok\n",
                "secrets:\n  A: null\n  B: null\n",
            ),
            ("secrets:\n  A: &tok anchored\n", "secrets:\n  A: null\n"),
            (
                "secrets:\n  A: |+  # keep\n    x\n\n  B: y\n",
                "secrets:\n  A: null  # keep\n\n  B: null\n",
            ),
            ("secrets:\n  A: !secret |\n    x\n", "secrets:\n  A: null\n"),
            (
                "secrets:\r\n  A: |\r\n    x\r\n    y\r\nrun: z\r\n",
                "secrets:\r\n  A: null\r\nrun: z\r\n",
            ),
            ("secrets:\n  A: \"multi\n    line\"\n", "secrets:\n  A: null\n"),
            ("secrets:\n  A: ''\n", "secrets:\n  A: ''\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_secrets(input).as_deref(), Some(expected), "{input:?}");
        }
    }

    #[test]
    fn secrets_that_cannot_be_separated_give_nothing() {
        for text in [
            // The value lives in `envs`, through an anchor.
            "envs:\n  A: &tok hunter2\nsecrets:\n  A: *tok\n",
            // A secret's anchor is used elsewhere: nulling it would change that value too.
            "secrets:\n  A: &tok hunter2\nenvs:\n  B: *tok\n",
            "base: &b\n  A: hunter2\nsecrets: *b\n",
            "secrets: [a, b]\n",
            "secrets: hunter2\n",
            "secrets:\n  A: [unclosed\n",
        ] {
            assert_eq!(redact_secrets(text), None, "{text:?}");
        }
    }

    #[test]
    fn redacted_text_still_parses_as_a_task_whose_secrets_come_from_the_environment() {
        let out = redact_secrets(TASK).unwrap();
        let vocab = crate::vocabulary::Vocabulary::from_offers(&[]);
        let given = crate::task::Overrides {
            envs: ["HF_TOKEN", "WANDB_KEY", "OTHER", "LATER", "EMPTY"]
                .iter()
                .map(|k| format!("{k}=from-env-{k}"))
                .collect(),
            ..crate::task::Overrides::default()
        };
        let task = given
            .parse_task(std::path::Path::new("t.yaml"), out.as_bytes(), &vocab)
            .unwrap();
        assert_eq!(task.secrets["HF_TOKEN"], "from-env-HF_TOKEN");
        assert_eq!(task.envs["MODEL"], "llama-3");
    }

    #[test]
    fn plain_env_keys_are_envs_that_are_not_secrets() {
        let keys = plain_env_keys("envs:\n  A: 1\n  B: 2\nsecrets:\n  B: x\n");
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["A"]);
        assert!(plain_env_keys("not: [yaml").is_empty());
    }
}
