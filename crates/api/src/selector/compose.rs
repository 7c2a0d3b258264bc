//! Building selectors from parts, as libcalico-go does when it turns v3
//! policy into the selectors Felix evaluates: conjunctions, label prefixes
//! (`pcns.`, `pcsa.`), `in` sets and the rewriting of `all()`/`global()` in
//! namespace selectors.
//!
//! Invariants: composed selectors keep the AST invariants of the parser
//! (`&&` nodes have at least two operands, sets are sorted and de-duplicated),
//! so equal compositions compare and hash equal. Composition adds at most a
//! constant number of nesting levels to its operands.

use std::collections::BTreeSet;

use super::{Node, Selector};

impl Selector {
    /// `global()`: true only for objects that are not namespaced.
    pub fn global() -> Selector {
        Selector { root: Node::Global }
    }

    /// `has(key)`.
    pub fn has_label(key: &str) -> Selector {
        Selector {
            root: Node::Has(key.to_string()),
        }
    }

    /// `key == "value"`.
    pub fn label_eq(key: &str, value: &str) -> Selector {
        Selector {
            root: Node::Eq(key.to_string(), value.to_string()),
        }
    }

    /// `key in {values}`.
    pub fn label_in<I, S>(key: &str, values: I) -> Selector
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let set: BTreeSet<String> = values.into_iter().map(Into::into).collect();
        Selector {
            root: Node::In(key.to_string(), set),
        }
    }

    /// `!self`.
    pub fn negated(&self) -> Selector {
        Selector {
            root: Node::Not(Box::new(self.root.clone())),
        }
    }

    /// The conjunction of `parts`; `all()` operands are dropped (they do not
    /// change the result), and no operand at all gives `all()`.
    pub fn and_all<I: IntoIterator<Item = Selector>>(parts: I) -> Selector {
        let mut nodes: Vec<Node> = parts
            .into_iter()
            .map(|s| s.root)
            .filter(|n| *n != Node::All)
            .collect();
        let root = match nodes.len() {
            0 => Node::All,
            1 => nodes.remove(0),
            _ => Node::And(nodes),
        };
        Selector { root }
    }

    /// Every label key prefixed with `prefix` (libcalico-go's `PrefixVisitor`):
    /// `team == "blue"` with `pcns.` becomes `pcns.team == "blue"`.
    pub fn with_key_prefix(&self, prefix: &str) -> Selector {
        Selector {
            root: self.root.map_leaves(&|n| n.prefixed(prefix)),
        }
    }

    /// `all()` and `global()` leaves replaced, as libcalico-go rewrites a
    /// namespace selector (`all()` becomes `has(projectcalico.org/namespace)`,
    /// `global()` becomes `!has(projectcalico.org/namespace)`).
    pub fn replace_all_and_global(&self, all: &Selector, global: &Selector) -> Selector {
        Selector {
            root: self.root.map_leaves(&|n| match n {
                Node::All => all.root.clone(),
                Node::Global => global.root.clone(),
                other => other.clone(),
            }),
        }
    }
}

impl Node {
    /// Rebuilds the tree with `f` applied to every leaf (every node that is
    /// not `!`, `&&` or `||`).
    fn map_leaves(&self, f: &dyn Fn(&Node) -> Node) -> Node {
        match self {
            Node::Not(n) => Node::Not(Box::new(n.map_leaves(f))),
            Node::And(ns) => Node::And(ns.iter().map(|n| n.map_leaves(f)).collect()),
            Node::Or(ns) => Node::Or(ns.iter().map(|n| n.map_leaves(f)).collect()),
            leaf => f(leaf),
        }
    }

    /// This leaf with its label key prefixed; leaves without a key are unchanged.
    fn prefixed(&self, p: &str) -> Node {
        let k = |key: &String| format!("{p}{key}");
        match self {
            Node::Has(key) => Node::Has(k(key)),
            Node::Eq(key, v) => Node::Eq(k(key), v.clone()),
            Node::Ne(key, v) => Node::Ne(k(key), v.clone()),
            Node::In(key, s) => Node::In(k(key), s.clone()),
            Node::NotIn(key, s) => Node::NotIn(k(key), s.clone()),
            Node::Contains(key, v) => Node::Contains(k(key), v.clone()),
            Node::StartsWith(key, v) => Node::StartsWith(k(key), v.clone()),
            Node::EndsWith(key, v) => Node::EndsWith(k(key), v.clone()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prefix_every_key() {
        let s = sel("team == 'blue' && !has(x) || tier in {'a','b'} && all()");
        let p = s.with_key_prefix("pcns.");
        assert_eq!(
            p.to_string(),
            "((pcns.team == \"blue\" && !has(pcns.x)) || (pcns.tier in {\"a\", \"b\"} && all()))"
        );
        assert!(p.matches(&labels(&[("pcns.team", "blue")])));
        assert!(!p.matches(&labels(&[("team", "blue")])));
    }

    #[test]
    fn and_all_drops_all_and_builds_conjunctions() {
        assert!(Selector::and_all([]).is_all());
        assert!(Selector::and_all([Selector::all(), Selector::all()]).is_all());
        assert_eq!(
            Selector::and_all([Selector::all(), sel("a == 'b'")]),
            sel("a == 'b'")
        );
        let both = Selector::and_all([sel("a == 'b'"), Selector::has_label("c")]);
        assert_eq!(both, sel("a == 'b' && has(c)"));
        assert!(both.matches(&labels(&[("a", "b"), ("c", "")])));
        assert!(!both.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn constructors_match_parsed_forms() {
        assert_eq!(Selector::label_eq("k", "v"), sel("k == 'v'"));
        assert_eq!(
            Selector::label_in("k", ["b", "a", "b"]),
            sel("k in {'a', 'b'}")
        );
        assert_eq!(Selector::has_label("k").negated(), sel("!has(k)"));
        // Round trip through the canonical form.
        let s = Selector::and_all([
            Selector::label_in("k", ["x"]),
            Selector::has_label("y").negated(),
        ]);
        assert_eq!(sel(&s.to_string()), s);
    }

    #[test]
    fn replaces_all_and_global_everywhere() {
        let ns = Selector::has_label("projectcalico.org/namespace");
        let global = ns.negated();
        assert_eq!(sel("all()").replace_all_and_global(&ns, &global), ns);
        assert_eq!(sel("global()").replace_all_and_global(&ns, &global), global);
        let s = sel("a == 'b' || !all()").replace_all_and_global(&ns, &global);
        assert_eq!(s, sel("a == 'b' || !has(projectcalico.org/namespace)"));
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("projectcalico.org/namespace", "x")])));
    }
}
