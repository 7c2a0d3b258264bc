//! The Calico label selector language, as parsed and evaluated by
//! libcalico-go (`lib/selector/tokenizer`, `lib/selector/parser`).
//!
//! # Grammar
//!
//! ```text
//! selector   = ws* [ or-expr ] ws* EOF           ; empty (or blank) input = all()
//! or-expr    = and-expr { "||" and-expr }
//! and-expr   = operation { "&&" operation }
//! operation  = { "!" } ( "has(" ws* label ws* ")"
//!                      | "all(" ws* ")"
//!                      | "global(" ws* ")"
//!                      | label ( "==" | "!=" | "contains" | "starts" ws* "with"
//!                              | "ends" ws* "with" ) string
//!                      | label ( "in" | "not" ws* "in" ) "{" [ string { "," string } [ "," ] ] "}"
//!                      | "(" or-expr ")" )
//! label      = 1*( ALPHA | DIGIT | "_" | "." | "/" | "-" )
//! string     = '"' { any char but '"' } '"' | "'" { any char but "'" } "'"
//! ws         = " " | "\t"
//! ```
//!
//! Tokens may be separated by any amount of whitespace, which (as in Calico)
//! is only space and tab: a newline is an unexpected character. `has(`,
//! `all(` and `global(` must be written without a space before the `(`.
//! Precedence: `!` binds tightest, then `&&`, then `||`; a run of `!` collapses
//! to one negation or none (`!!has(a)` is `has(a)`), so `!a == "x" && b == "y"`
//! is `(!(a == "x")) && (b == "y")`. String literals have no escapes, so a value
//! can hold `'` or `"`, never both. Label keys are Calico's tokenizer set, which
//! covers the Kubernetes key syntax (`example.com/key`, letters, digits, `-_.`);
//! like Calico, it does not check the finer Kubernetes rules (`a/b/c` parses).
//!
//! # Semantics
//!
//! - `k == "v"`, `k in {..}`, `k contains "v"`, `k starts with "v"`,
//!   `k ends with "v"` and `has(k)` are false when label `k` is absent;
//!   `k != "v"` and `k not in {..}` are true when it is absent.
//! - `all()` is always true.
//! - `global()` is true only for objects that are *not namespaced* (host
//!   endpoints, global network sets). Calico allows it in a rule's
//!   `namespaceSelector`, where it widens the rule's `selector` to non-namespaced
//!   resources; libcalico-go implements it by rewriting `global()` to
//!   `!has(projectcalico.org/namespace)` before evaluating against endpoint
//!   labels (its raw `GlobalNode` evaluates to true). Here the caller states it
//!   explicitly: [`Selector::matches_with`] takes a `global` flag, and
//!   [`Selector::matches`] evaluates in a namespaced context (`global()` false).
//!
//! # Canonical form
//!
//! [`Display`](std::fmt::Display) writes Calico's canonical string
//! (`Selector.String()`): `&&`/`||` groups are always parenthesized
//! (`(a == "b" && has(c))`), operators are spaced, set members are sorted and
//! de-duplicated, values are double-quoted unless they contain `"`. The one
//! deviation: a negation of a negation is written `!(!x)` (Calico writes `!!x`,
//! which reads back as `x`), so that `parse(display(s)) == s` always holds.
//!
//! # Invariants
//!
//! - Parsing never panics, on any input.
//! - Nesting is bounded: a selector whose parentheses, or canonical form's
//!   parentheses, nest deeper than [`MAX_NESTING_DEPTH`] is rejected, so
//!   parsing, evaluating, printing and dropping never overflow the stack.
//! - In the AST, `&&`/`||` nodes have at least two operands and sets are
//!   sorted and de-duplicated, so equal selectors compare and hash equal.
//! - Error positions are byte offsets into the input.
//!
//! # Composition
//!
//! Selectors can also be built from parts ([`Selector::and_all`],
//! [`Selector::with_key_prefix`], [`Selector::label_in`], ...), as libcalico-go
//! does when it turns v3 policy into the selectors Felix evaluates. Composed
//! selectors keep the AST invariants above and nest at most a constant number
//! of levels deeper than their parts.

mod compose;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// How deeply parentheses may nest (in the input and in the canonical form).
pub const MAX_NESTING_DEPTH: usize = 128;

/// A selector that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector at position {position}: {message}")]
pub struct SelectorError {
    /// Byte offset in the input where the problem was found.
    pub position: usize,
    /// What was wrong, lowercase, without a trailing period.
    pub message: String,
}

impl SelectorError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        SelectorError {
            position,
            message: message.into(),
        }
    }
}

/// A parsed Calico label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    root: Node,
}

/// The selector AST, mirroring libcalico-go's node types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    All,
    Global,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Node>),
    /// At least two operands.
    And(Vec<Node>),
    /// At least two operands.
    Or(Vec<Node>),
}

impl Selector {
    /// Parses a selector; the empty (or blank) string is `all()`.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        parse::parse(s).map(|root| Selector { root })
    }

    /// The selector that matches everything.
    pub fn all() -> Selector {
        Selector { root: Node::All }
    }

    /// Evaluates against a label map in a namespaced context: `global()` is false.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(labels, false)
    }

    /// Evaluates against a label map; `global` says whether the object is
    /// non-namespaced, which is what `global()` tests.
    pub fn matches_with(&self, labels: &BTreeMap<String, String>, global: bool) -> bool {
        self.root.eval(labels, global)
    }

    /// True for `all()` (and the empty selector).
    pub fn is_all(&self) -> bool {
        self.root == Node::All
    }

    /// A label key and the values one of which an object must carry under
    /// it for the selector to match (from a top-level `k == "v"` or
    /// `k in {..}`, possibly inside `&&`), if the selector has one: what an
    /// index of selectors by label needs. Among several, one on a key
    /// other than `avoid` is preferred (e.g. the namespace label, which
    /// many objects share).
    pub fn required_values(&self, avoid: &str) -> Option<(&str, Vec<&str>)> {
        fn of(n: &Node) -> Option<(&str, Vec<&str>)> {
            match n {
                Node::Eq(k, v) => Some((k.as_str(), vec![v.as_str()])),
                Node::In(k, set) => Some((k.as_str(), set.iter().map(String::as_str).collect())),
                _ => None,
            }
        }
        match &self.root {
            Node::And(ns) => {
                let all: Vec<_> = ns.iter().filter_map(of).collect();
                let preferred = all.iter().position(|(k, _)| *k != avoid);
                let i = preferred.unwrap_or(0);
                all.into_iter().nth(i)
            }
            n => of(n),
        }
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl Node {
    fn eval(&self, labels: &BTreeMap<String, String>, global: bool) -> bool {
        match self {
            Node::All => true,
            Node::Global => global,
            Node::Has(k) => labels.contains_key(k),
            Node::Eq(k, v) => labels.get(k).is_some_and(|x| x == v),
            Node::Ne(k, v) => labels.get(k).is_none_or(|x| x != v),
            Node::In(k, set) => labels.get(k).is_some_and(|x| set.contains(x)),
            Node::NotIn(k, set) => labels.get(k).is_none_or(|x| !set.contains(x)),
            Node::Contains(k, v) => labels.get(k).is_some_and(|x| x.contains(v.as_str())),
            Node::StartsWith(k, v) => labels.get(k).is_some_and(|x| x.starts_with(v.as_str())),
            Node::EndsWith(k, v) => labels.get(k).is_some_and(|x| x.ends_with(v.as_str())),
            Node::Not(n) => !n.eval(labels, global),
            Node::And(ns) => ns.iter().all(|n| n.eval(labels, global)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(labels, global)),
        }
    }

    /// How deeply parentheses nest in this node's canonical form.
    fn display_depth(&self) -> usize {
        match self {
            Node::Not(n) => n.display_depth() + usize::from(matches!(**n, Node::Not(_))),
            Node::And(ns) | Node::Or(ns) => {
                1 + ns.iter().map(Node::display_depth).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// Writes a string literal, double-quoted unless the value holds a `"`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let q = if s.contains('"') { '\'' } else { '"' };
    write!(f, "{q}{s}{q}")
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &BTreeSet<String>) -> fmt::Result {
    f.write_str("{")?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, v)?;
    }
    f.write_str("}")
}

fn write_joined(f: &mut fmt::Formatter<'_>, ns: &[Node], sep: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, n) in ns.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{n}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::All => f.write_str("all()"),
            Node::Global => f.write_str("global()"),
            Node::Has(k) => write!(f, "has({k})"),
            Node::Eq(k, v) => {
                write!(f, "{k} == ")?;
                write_quoted(f, v)
            }
            Node::Ne(k, v) => {
                write!(f, "{k} != ")?;
                write_quoted(f, v)
            }
            Node::Contains(k, v) => {
                write!(f, "{k} contains ")?;
                write_quoted(f, v)
            }
            Node::StartsWith(k, v) => {
                write!(f, "{k} starts with ")?;
                write_quoted(f, v)
            }
            Node::EndsWith(k, v) => {
                write!(f, "{k} ends with ")?;
                write_quoted(f, v)
            }
            Node::In(k, set) => {
                write!(f, "{k} in ")?;
                write_set(f, set)
            }
            Node::NotIn(k, set) => {
                write!(f, "{k} not in ")?;
                write_set(f, set)
            }
            Node::Not(n) if matches!(**n, Node::Not(_)) => write!(f, "!({n})"),
            Node::Not(n) => write!(f, "!{n}"),
            Node::And(ns) => write_joined(f, ns, " && "),
            Node::Or(ns) => write_joined(f, ns, " || "),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SelectorVisitor;

        impl serde::de::Visitor<'_> for SelectorVisitor {
            type Value = Selector;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a calico selector string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Selector, E> {
                Selector::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(SelectorVisitor)
    }
}
