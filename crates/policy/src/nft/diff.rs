//! The transaction that turns one compiled ruleset into another: element
//! adds and deletes for sets and maps, chains added, refilled or deleted,
//! all as one `nft -f` text (which the kernel applies atomically).
//!
//! Order, so that every step is valid for the kernel:
//! 1. new sets and maps, and new chains (empty), so references resolve;
//! 2. set elements: deletes, then adds (elements stay disjoint);
//! 3. chains that are new or whose rules changed: flush, then their rules;
//! 4. map entries: deleted or changed keys removed, then the new entries;
//! 5. chains no longer present: all flushed, then deleted;
//! 6. sets and maps no longer present, deleted.
//!
//! Invariant (checked by [`Ruleset::apply`] in the tests): applying
//! `diff(a, b)` to `a` gives `b`, and no step refers to a missing object or
//! deletes one still referred to.

use std::collections::BTreeSet;
use std::fmt::{self, Display, Formatter};

use super::render::{MAP_SPEC, chain_header, elements, map_entry, quote, set_spec};
use super::{Chain, Element, Map, Rule, Ruleset, Set, TABLE, Verdict};

/// One step of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create a set (empty).
    AddSet(String, Set),
    /// Create a verdict map (empty).
    AddMap(String),
    /// Create an empty chain (with its hook and comment).
    AddChain(String, Chain),
    /// Add elements to a set.
    AddElements(String, Vec<Element>),
    /// Remove elements from a set.
    DeleteElements(String, Vec<Element>),
    /// Remove every rule of a chain.
    FlushChain(String),
    /// Append a rule to a chain.
    AddRule(String, Rule),
    /// Add map entries.
    AddMapEntries(String, Vec<(String, Verdict)>),
    /// Remove map entries.
    DeleteMapEntries(String, Vec<String>),
    /// Delete an (empty, unreferenced) chain.
    DeleteChain(String),
    /// Delete an unreferenced set.
    DeleteSet(String),
    /// Delete an unreferenced map.
    DeleteMap(String),
}

/// Commands applied together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    /// In order.
    pub commands: Vec<Command>,
}

impl Transaction {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// The transaction from `old` to `new`.
pub fn diff(old: &Ruleset, new: &Ruleset) -> Transaction {
    let mut c = Vec::new();
    for (name, s) in new.sets.iter().filter(|(n, _)| !old.sets.contains_key(*n)) {
        let empty = Set {
            elements: BTreeSet::new(),
            ..s.clone()
        };
        c.push(Command::AddSet(name.clone(), empty));
    }
    for name in new.maps.keys().filter(|n| !old.maps.contains_key(*n)) {
        c.push(Command::AddMap(name.clone()));
    }
    for (name, ch) in new
        .chains
        .iter()
        .filter(|(n, _)| !old.chains.contains_key(*n))
    {
        let empty = Chain {
            rules: Vec::new(),
            ..ch.clone()
        };
        c.push(Command::AddChain(name.clone(), empty));
    }
    let empty_set = BTreeSet::new();
    for (name, s) in &new.sets {
        let before = old.sets.get(name).map_or(&empty_set, |o| &o.elements);
        let gone: Vec<Element> = before.difference(&s.elements).cloned().collect();
        if !gone.is_empty() {
            c.push(Command::DeleteElements(name.clone(), gone));
        }
    }
    for (name, s) in &new.sets {
        let before = old.sets.get(name).map_or(&empty_set, |o| &o.elements);
        let added: Vec<Element> = s.elements.difference(before).cloned().collect();
        if !added.is_empty() {
            c.push(Command::AddElements(name.clone(), added));
        }
    }
    for (name, ch) in &new.chains {
        match old.chains.get(name) {
            Some(o) if o.rules == ch.rules => {}
            Some(_) => {
                c.push(Command::FlushChain(name.clone()));
                c.extend(
                    ch.rules
                        .iter()
                        .map(|r| Command::AddRule(name.clone(), r.clone())),
                );
            }
            None => c.extend(
                ch.rules
                    .iter()
                    .map(|r| Command::AddRule(name.clone(), r.clone())),
            ),
        }
    }
    let empty_map = Map::default();
    for (name, m) in &new.maps {
        let before = old.maps.get(name).unwrap_or(&empty_map);
        let stale: Vec<String> = before
            .elements
            .iter()
            .filter(|(k, v)| m.elements.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        if !stale.is_empty() {
            c.push(Command::DeleteMapEntries(name.clone(), stale));
        }
        let fresh: Vec<(String, Verdict)> = m
            .elements
            .iter()
            .filter(|(k, v)| before.elements.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !fresh.is_empty() {
            c.push(Command::AddMapEntries(name.clone(), fresh));
        }
    }
    for name in old.maps.keys().filter(|n| !new.maps.contains_key(*n)) {
        // Entries go first: they may point at chains about to be deleted.
        let keys: Vec<String> = old.maps[name].elements.keys().cloned().collect();
        if !keys.is_empty() {
            c.push(Command::DeleteMapEntries(name.clone(), keys));
        }
    }
    let gone_chains: Vec<&String> = old
        .chains
        .keys()
        .filter(|n| !new.chains.contains_key(*n))
        .collect();
    c.extend(
        gone_chains
            .iter()
            .map(|n| Command::FlushChain((*n).clone())),
    );
    c.extend(
        gone_chains
            .iter()
            .map(|n| Command::DeleteChain((*n).clone())),
    );
    for name in old.maps.keys().filter(|n| !new.maps.contains_key(*n)) {
        c.push(Command::DeleteMap(name.clone()));
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        c.push(Command::DeleteSet(name.clone()));
    }
    Transaction { commands: c }
}

impl Display for Command {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Command::AddSet(n, s) => write!(f, "add set {TABLE} {n} {{ {} }}", set_spec(s)),
            Command::AddMap(n) => write!(f, "add map {TABLE} {n} {{ {MAP_SPEC} }}"),
            Command::AddChain(n, ch) => {
                let header = chain_header(ch);
                if header.is_empty() {
                    write!(f, "add chain {TABLE} {n}")
                } else {
                    write!(f, "add chain {TABLE} {n} {{ {} }}", header.join(" "))
                }
            }
            Command::AddElements(n, e) => write!(f, "add element {TABLE} {n} {}", elements(e)),
            Command::DeleteElements(n, e) => {
                write!(f, "delete element {TABLE} {n} {}", elements(e))
            }
            Command::FlushChain(n) => write!(f, "flush chain {TABLE} {n}"),
            Command::AddRule(n, r) => write!(f, "add rule {TABLE} {n} {r}"),
            Command::AddMapEntries(n, e) => {
                let entries = e.iter().map(|(k, v)| map_entry(k, v));
                write!(f, "add element {TABLE} {n} {}", elements(entries))
            }
            Command::DeleteMapEntries(n, keys) => {
                write!(
                    f,
                    "delete element {TABLE} {n} {}",
                    elements(keys.iter().map(|k| quote(k)))
                )
            }
            Command::DeleteChain(n) => write!(f, "delete chain {TABLE} {n}"),
            Command::DeleteSet(n) => write!(f, "delete set {TABLE} {n}"),
            Command::DeleteMap(n) => write!(f, "delete map {TABLE} {n}"),
        }
    }
}

impl Display for Transaction {
    /// The `nft -f` text: one command per line (empty for no change).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for c in &self.commands {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

impl Ruleset {
    /// Applies a transaction the way the kernel would, refusing (with the
    /// failing command) anything the kernel would refuse: references to
    /// missing objects, deleting what is still referred to or missing,
    /// adding what exists.
    pub fn apply(&mut self, t: &Transaction) -> Result<(), String> {
        for cmd in &t.commands {
            self.apply_one(cmd).map_err(|e| format!("{cmd}: {e}"))?;
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> bool {
        self.chains.contains_key(name)
            || self.sets.contains_key(name)
            || self.maps.contains_key(name)
    }

    fn referenced(&self, name: &str) -> bool {
        self.references().iter().any(|(_, to)| *to == name)
    }

    fn apply_one(&mut self, cmd: &Command) -> Result<(), String> {
        let missing = |n: &str| format!("{n} does not exist");
        match cmd {
            Command::AddSet(n, s) => {
                if self.sets.insert(n.clone(), s.clone()).is_some() {
                    return Err("set exists".into());
                }
            }
            Command::AddMap(n) => {
                if self.maps.insert(n.clone(), Map::default()).is_some() {
                    return Err("map exists".into());
                }
            }
            Command::AddChain(n, ch) => {
                if self.chains.insert(n.clone(), ch.clone()).is_some() {
                    return Err("chain exists".into());
                }
            }
            Command::AddElements(n, e) => {
                let s = self.sets.get_mut(n).ok_or_else(|| missing(n))?;
                s.elements.extend(e.iter().cloned());
            }
            Command::DeleteElements(n, e) => {
                let s = self.sets.get_mut(n).ok_or_else(|| missing(n))?;
                for x in e {
                    if !s.elements.remove(x) {
                        return Err(format!("element {x} is not in {n}"));
                    }
                }
            }
            Command::FlushChain(n) => self
                .chains
                .get_mut(n)
                .ok_or_else(|| missing(n))?
                .rules
                .clear(),
            Command::AddRule(n, r) => {
                if let Some(to) = r.references().find(|to| !self.exists(to)) {
                    return Err(missing(to));
                }
                self.chains
                    .get_mut(n)
                    .ok_or_else(|| missing(n))?
                    .rules
                    .push(r.clone());
            }
            Command::AddMapEntries(n, entries) => {
                if let Some(to) = entries
                    .iter()
                    .filter_map(|(_, v)| v.target())
                    .find(|to| !self.exists(to))
                {
                    return Err(missing(to));
                }
                let m = self.maps.get_mut(n).ok_or_else(|| missing(n))?;
                for (k, v) in entries {
                    if m.elements.insert(k.clone(), v.clone()).is_some() {
                        return Err(format!("key {k} exists in {n}"));
                    }
                }
            }
            Command::DeleteMapEntries(n, keys) => {
                let m = self.maps.get_mut(n).ok_or_else(|| missing(n))?;
                for k in keys {
                    m.elements
                        .remove(k)
                        .ok_or_else(|| format!("key {k} is not in {n}"))?;
                }
            }
            Command::DeleteChain(n) => {
                if self.chains.get(n).is_some_and(|c| !c.rules.is_empty()) {
                    return Err("chain is not empty".into());
                }
                self.delete_unreferenced(n, |r| r.chains.remove(n).is_some())?;
            }
            Command::DeleteSet(n) => self.delete_unreferenced(n, |r| r.sets.remove(n).is_some())?,
            Command::DeleteMap(n) => self.delete_unreferenced(n, |r| r.maps.remove(n).is_some())?,
        }
        Ok(())
    }

    fn delete_unreferenced(
        &mut self,
        n: &str,
        remove: impl FnOnce(&mut Ruleset) -> bool,
    ) -> Result<(), String> {
        if self.referenced(n) {
            return Err(format!("{n} is still referred to"));
        }
        if remove(self) {
            Ok(())
        } else {
            Err(format!("{n} does not exist"))
        }
    }
}
