//! A tiny YAML writer for the generated compose file.
//!
//! Compose files are YAML, but the document dpe writes is plain data (maps, lists, strings,
//! numbers, booleans), so a 60-line emitter beats a YAML dependency (serde_yaml is no longer
//! maintained). Every string is written double-quoted with JSON escaping, which YAML's
//! double-quoted style reads the same way in PyYAML (docker-compose v1), Go's yaml (compose v2,
//! `docker stack deploy`) and every other parser; keys are written bare only when they cannot
//! be mistaken for anything but a string. Map order is the order the document was built in, so
//! the file reads like a hand-written one (`image` before `command`).

use serde::{Deserialize, Serialize};

/// One YAML value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Node {
    pub fn str(value: impl Into<String>) -> Node {
        Node::Str(value.into())
    }

    pub fn strs<S: AsRef<str>>(values: &[S]) -> Node {
        Node::List(values.iter().map(|v| Node::str(v.as_ref())).collect())
    }

    /// Converts JSON (e.g. the gpu plugin's device reservation) into a node; `null` has no
    /// place in the generated file and becomes an empty map.
    pub fn from_json(value: &serde_json::Value) -> Node {
        use serde_json::Value;
        match value {
            Value::Null => Node::Map(Vec::new()),
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Node::Int(i),
                None => Node::Str(n.to_string()),
            },
            Value::String(s) => Node::Str(s.clone()),
            Value::Array(items) => Node::List(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => Node::Map(map.iter().map(|(k, v)| (k.clone(), Node::from_json(v))).collect()),
        }
    }
}

/// Renders a document, with `header` as leading `#` comment lines.
pub fn to_string(node: &Node, header: &[&str]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    match node {
        Node::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        other => {
            write_inline(&mut out, other);
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (i, (key, value)) in entries.iter().enumerate() {
        // The first entry of a map that is a list item sits on the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        write_key(out, key);
        out.push(':');
        write_value(out, value, indent);
    }
}

fn write_value(out: &mut String, value: &Node, indent: usize) {
    match value {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            write_map(out, entries, indent + 2);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                push_indent(out, indent + 2);
                out.push_str("- ");
                match item {
                    Node::Map(entries) if !entries.is_empty() => write_map(out, entries, indent + 4),
                    Node::List(inner) if !inner.is_empty() => {
                        // Lists of lists never occur in compose files; keep them valid anyway.
                        write_inline(out, item);
                        out.push('\n');
                    }
                    other => {
                        write_inline(out, other);
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push(' ');
            write_inline(out, other);
            out.push('\n');
        }
    }
}

/// Flow style, used for scalars, empty collections and the odd nested list.
fn write_inline(out: &mut String, value: &Node) {
    match value {
        Node::Str(s) => out.push_str(&serde_json::to_string(s).expect("a string serialises")),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_inline(out, item);
            }
            out.push(']');
        }
        Node::Map(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, key);
                out.push_str(": ");
                write_inline(out, item);
            }
            out.push('}');
        }
    }
}

fn write_key(out: &mut String, key: &str) {
    if is_plain_key(key) {
        out.push_str(key);
    } else {
        out.push_str(&serde_json::to_string(key).expect("a string serialises"));
    }
}

/// Whether a key can be written bare: letters, digits and `_.-/`, starting with a letter or
/// `_`, and not one of the words YAML 1.1 reads as a boolean or null.
fn is_plain_key(key: &str) -> bool {
    const WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let mut chars = key.chars();
    let Some(first) = chars.next() else { return false };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !WORDS.contains(&key.to_ascii_lowercase().as_str())
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_maps_and_lists() {
        let doc = Node::Map(vec![
            (
                "services".into(),
                Node::Map(vec![(
                    "a".into(),
                    Node::Map(vec![
                        ("image".into(), Node::str("x:1")),
                        ("ports".into(), Node::strs(&["127.0.0.1:8888:8888"])),
                        ("environment".into(), Node::Map(vec![])),
                        (
                            "deploy".into(),
                            Node::List(vec![Node::Map(vec![
                                ("count".into(), Node::Int(1)),
                                ("capabilities".into(), Node::strs(&["gpu"])),
                            ])]),
                        ),
                    ]),
                )]),
            ),
            ("on".into(), Node::Bool(true)),
        ]);
        let text = to_string(&doc, &["made by a test"]);
        assert_eq!(
            text,
            "# made by a test\n\
             services:\n  a:\n    image: \"x:1\"\n    ports:\n      - \"127.0.0.1:8888:8888\"\n    \
             environment: {}\n    deploy:\n      - count: 1\n        capabilities:\n          - \"gpu\"\n\
             \"on\": true\n"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let doc = Node::Map(vec![("k".into(), Node::str("a \"b\"\nc\\"))]);
        assert_eq!(to_string(&doc, &[]), "k: \"a \\\"b\\\"\\nc\\\\\"\n");
    }
}
