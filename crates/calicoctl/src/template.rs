//! `calicoctl get -o custom-columns=…` and `-o go-template=…`: small,
//! documented subsets, over the JSON calicoctl prints with `-o json`.
//!
//! Paths (`.metadata.name`, `.spec.cidr`) name fields of that JSON. A path
//! segment matches a key exactly, else ignoring case, so Calico's Go field
//! names work too (`.Spec.CIDR`, `.Items`, `.ObjectMeta.Name`, and `.Name`
//! for a metadata field, as Go promotes the embedded ObjectMeta's fields).
//!
//! - `custom-columns=COL,COL,…`: each COL is one of Calico's headings for the
//!   kind (`NAME`, `CIDR`, …, as Calico's calicoctl takes them), or
//!   `HEADING:.path`, or a bare `.path` (heading: its last segment in capitals).
//! - `go-template=TEXT`: literal text, `{{.path}}` (`{{.}}` for the current
//!   value), `{{range .path}}…{{end}}` (nestable; over a list, or a map's
//!   values in key order), and `\n` / `\t` in the literal text for a newline
//!   / tab. The template runs once over the `-o json` value: one resource
//!   when one name is given, else a `…List` with `items`. Anything else in
//!   `{{ }}` (`if`, functions, pipelines, variables) is refused with an error
//!   before anything is printed.

use anyhow::bail;
use serde_json::Value;

/// `v` at `path` (`.a.b`; `.` alone is `v`), matched as the module says.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.trim().strip_prefix('.')?;
    let mut cur = v;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let seg = if seg.eq_ignore_ascii_case("ObjectMeta") {
            "metadata"
        } else {
            seg
        };
        let Value::Object(m) = cur else {
            return None;
        };
        cur = match m.get(seg).or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                .map(|(_, v)| v)
        }) {
            Some(v) => v,
            // Go's promotion of the embedded ObjectMeta: `.Name`.
            None => lookup(m.get("metadata")?, &format!(".{seg}"))?,
        };
    }
    Some(cur)
}

/// A value as a cell or template output: strings as they are, lists of
/// scalars joined by `,`, other structures as compact JSON.
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "<no value>".into(),
        Some(Value::Null) => "<nil>".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.iter().all(|x| !x.is_object() && !x.is_array()) => a
            .iter()
            .map(|x| show(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// One column of `custom-columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// One of Calico's headings for the kind.
    Heading(String),
    /// A heading and a path.
    Path(String, String),
}

impl Column {
    /// The column's heading.
    pub fn heading(&self) -> &str {
        match self {
            Column::Heading(h) | Column::Path(h, _) => h,
        }
    }
}

/// Parses the text after `custom-columns=`.
pub fn parse_columns(spec: &str) -> anyhow::Result<Vec<Column>> {
    if spec.trim().is_empty() {
        bail!(
            "need to specify at least one column: -o custom-columns=NAME,CIDR or -o custom-columns=NAME:.metadata.name"
        );
    }
    spec.split(',')
        .map(|c| {
            let c = c.trim();
            if let Some((h, p)) = c.split_once(':') {
                if h.is_empty() || !p.starts_with('.') {
                    bail!("custom column {c:?}: give HEADING:.path, .path or one of the kind's headings");
                }
                Ok(Column::Path(h.to_string(), p.to_string()))
            } else if c.starts_with('.') {
                let last = c.rsplit('.').find(|s| !s.is_empty()).unwrap_or("value");
                Ok(Column::Path(last.to_uppercase(), c.to_string()))
            } else if c.is_empty() {
                bail!("custom columns: an empty column in {spec:?}");
            } else {
                Ok(Column::Heading(c.to_uppercase()))
            }
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Node {
    Text(String),
    Field(String),
    Range(String, Vec<Node>),
}

/// A parsed go-template (the subset the module describes).
#[derive(Debug, PartialEq)]
pub struct Template(Vec<Node>);

const SUPPORTED: &str =
    "supported: literal text, \\n, \\t, {{.path}}, {{.}}, {{range .path}} ... {{end}}";

impl Template {
    /// Parses `text`; an action outside the subset is an error naming it.
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        if text.is_empty() {
            bail!(
                "need to specify a template: -o go-template='{{{{range .items}}}}{{{{.metadata.name}}}}\\n{{{{end}}}}'"
            );
        }
        let mut stack: Vec<(String, Vec<Node>)> = vec![(String::new(), Vec::new())];
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find("{{") else {
                push_text(&mut stack, rest);
                break;
            };
            push_text(&mut stack, &rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                bail!("go-template: \"{{{{\" without \"}}}}\"");
            };
            let action = after[..close].trim();
            rest = &after[close + 2..];
            let words: Vec<&str> = action.split_whitespace().collect();
            match words.as_slice() {
                [path] if path.starts_with('.') && is_path(path) => {
                    last(&mut stack).push(Node::Field(path.to_string()))
                }
                ["range", path] if path.starts_with('.') && is_path(path) => {
                    stack.push((path.to_string(), Vec::new()))
                }
                ["end"] => {
                    if stack.len() < 2 {
                        bail!("go-template: {{{{end}}}} without {{{{range}}}}");
                    }
                    let (path, body) = stack.pop().unwrap_or_default();
                    last(&mut stack).push(Node::Range(path, body));
                }
                _ => bail!("go-template: {{{{{action}}}}} is not supported ({SUPPORTED})"),
            }
        }
        if stack.len() != 1 {
            bail!("go-template: {{{{range}}}} without {{{{end}}}}");
        }
        Ok(Template(stack.pop().map(|(_, b)| b).unwrap_or_default()))
    }

    /// The template's output over `data`.
    pub fn render(&self, data: &Value) -> anyhow::Result<String> {
        let mut out = String::new();
        render(&self.0, data, &mut out)?;
        Ok(out)
    }
}

fn is_path(p: &str) -> bool {
    p == "."
        || p[1..].split('.').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

fn last(stack: &mut [(String, Vec<Node>)]) -> &mut Vec<Node> {
    // The stack always holds the top level.
    &mut stack[stack.len() - 1].1
}

fn push_text(stack: &mut [(String, Vec<Node>)], text: &str) {
    if !text.is_empty() {
        let t = text.replace("\\n", "\n").replace("\\t", "\t");
        last(stack).push(Node::Text(t));
    }
}

fn render(nodes: &[Node], data: &Value, out: &mut String) -> anyhow::Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Field(p) => out.push_str(&show(lookup(data, p))),
            Node::Range(p, body) => match lookup(data, p) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for i in items {
                        render(body, i, out)?;
                    }
                }
                Some(Value::Object(m)) => {
                    let mut keys: Vec<&String> = m.keys().collect();
                    keys.sort();
                    for k in keys {
                        render(body, &m[k], out)?;
                    }
                }
                Some(other) => bail!("go-template: cannot range over {p} ({other})"),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"kind": "IPPoolList", "items": [
            {"metadata": {"name": "a"}, "spec": {"cidr": "10.0.0.0/16", "allowedUses": ["Workload", "Tunnel"]}},
            {"metadata": {"name": "b"}, "spec": {"cidr": "10.1.0.0/16"}}]})
    }

    #[test]
    fn paths_in_json_and_go_spelling() {
        let v = &list()["items"][0];
        assert_eq!(show(lookup(v, ".metadata.name")), "a");
        assert_eq!(show(lookup(v, ".ObjectMeta.Name")), "a");
        assert_eq!(show(lookup(v, ".Name")), "a");
        assert_eq!(show(lookup(v, ".Spec.CIDR")), "10.0.0.0/16");
        assert_eq!(show(lookup(v, ".spec.allowedUses")), "Workload,Tunnel");
        assert_eq!(show(lookup(v, ".spec.nope")), "<no value>");
    }

    #[test]
    fn templates() {
        let t =
            Template::parse("{{range .items}}{{.metadata.name}} {{.spec.cidr}}\\n{{end}}").unwrap();
        assert_eq!(t.render(&list()).unwrap(), "a 10.0.0.0/16\nb 10.1.0.0/16\n");
        let t = Template::parse(
            "{{ range .Items }}[{{ range .spec.allowedUses }}{{.}};{{end}}]{{end}}",
        )
        .unwrap();
        assert_eq!(t.render(&list()).unwrap(), "[Workload;Tunnel;][]");
        for bad in [
            "{{if .items}}x{{end}}",
            "{{.metadata.name | upper}}",
            "{{range .items}}",
            "{{end}}",
            "{{.metadata.name",
            "{{$x := .}}",
            "",
        ] {
            let e = Template::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("go-template") || e.contains("template"),
                "{bad}: {e}"
            );
        }
        let e = Template::parse("{{if .x}}{{end}}").unwrap_err().to_string();
        assert!(
            e.contains("{{if .x}} is not supported") && e.contains("{{range .path}}"),
            "{e}"
        );
    }

    #[test]
    fn columns() {
        assert_eq!(
            parse_columns("NAME,cidr,Pool:.metadata.name,.spec.ipipMode").unwrap(),
            [
                Column::Heading("NAME".into()),
                Column::Heading("CIDR".into()),
                Column::Path("Pool".into(), ".metadata.name".into()),
                Column::Path("IPIPMODE".into(), ".spec.ipipMode".into()),
            ]
        );
        assert!(parse_columns("").is_err());
        assert!(parse_columns("NAME,,CIDR").is_err());
        assert!(parse_columns("X:metadata.name").is_err());
    }
}
