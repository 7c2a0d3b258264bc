//! The key-value interface every backend implements, modelled on etcd v3.
//!
//! Invariants all backends keep:
//! - the store revision starts at 0 (empty) and grows by one per committed
//!   transaction that changes something; every event of one transaction
//!   carries that revision;
//! - a key's `mod_revision` is the revision of its last change and
//!   `create_revision` that of its creation; an absent key compares as 0;
//! - a watch from revision `r` yields every change with revision `>= r`
//!   under its prefix, in revision order, each exactly once.

use std::time::Duration;

/// A store revision.
pub type Revision = i64;

/// A stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value bytes.
    pub value: Vec<u8>,
    /// Revision that created the key.
    pub create_revision: Revision,
    /// Revision of the key's last change.
    pub mod_revision: Revision,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod revision equals `revision` (0: the key does not exist).
    ModRevision {
        /// The key.
        key: String,
        /// Expected mod revision.
        revision: Revision,
    },
}

impl Compare {
    /// The key must not exist.
    pub fn absent(key: impl Into<String>) -> Compare {
        Compare::ModRevision {
            key: key.into(),
            revision: 0,
        }
    }

    /// The key must be at exactly this revision.
    pub fn at(key: impl Into<String>, revision: Revision) -> Compare {
        Compare::ModRevision {
            key: key.into(),
            revision,
        }
    }
}

/// A write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove a key (nothing if absent).
    Delete {
        /// The key.
        key: String,
    },
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or updated.
    Put,
    /// Deleted.
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: String,
    /// The new value (empty for a delete).
    pub value: Vec<u8>,
    /// Revision of the change.
    pub mod_revision: Revision,
}

/// Errors of the key-value layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The datastore could not be reached within the retry budget.
    #[error("datastore unreachable at {endpoint}: {reason}")]
    Unavailable {
        /// Where we tried (file path or endpoints).
        endpoint: String,
        /// The last error seen.
        reason: String,
    },
    /// A watch asked for history the store no longer keeps.
    #[error(
        "revision {requested} has been compacted (oldest kept is {compacted}): list again and watch from the new revision"
    )]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction point.
        compacted: Revision,
    },
    /// Any other backend failure.
    #[error("datastore error: {0}")]
    Backend(String),
}

/// A stream of changes. Dropping it ends the watch.
pub trait Watch: Send {
    /// The next event, or `None` when none arrives within `timeout`.
    fn next(&mut self, timeout: Duration) -> Result<Option<Event>, StoreError>;
}

/// A key-value store with revisions, transactions and watches.
pub trait Store: Send + Sync {
    /// Where the store is, for messages (`local store /path`, `etcd at http://...`).
    fn describe(&self) -> String;
    /// One key.
    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Every key under `prefix`, sorted by key, and the revision they were read at.
    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;
    /// If every compare holds, applies every op atomically and returns the
    /// new revision; otherwise changes nothing and returns `None`. A
    /// backend that retries after a lost answer reports an attempt that did
    /// commit as committed (never as a conflict, and never applied twice).
    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<Option<Revision>, StoreError>;
    /// Every key under `prefix`, sorted by key, handed to `page` a page at a
    /// time (all pages read at one revision, which is returned), so a large
    /// prefix is never held whole. The default reads it in one piece.
    fn list_paged(
        &self,
        prefix: &str,
        page: &mut dyn FnMut(Vec<KeyValue>),
    ) -> Result<Revision, StoreError> {
        let (kvs, rev) = self.list(prefix)?;
        page(kvs);
        Ok(rev)
    }
    /// Changes under `prefix` with revision `>= from` (use `list`'s revision + 1).
    fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watch>, StoreError>;
}

/// The smallest string greater than every string starting with `prefix`
/// (`None` when there is none, i.e. the prefix is empty).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(next) = char::from_u32(c as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end("/a/b/").as_deref(), Some("/a/b0"));
        assert_eq!(prefix_end("").as_deref(), None);
        let end = prefix_end("/x/").unwrap_or_default();
        for k in ["/x/", "/x/a", "/x/~~~~", "/x/\u{10ffff}"] {
            assert!(k < end.as_str(), "{k}");
        }
        assert!("/x0" >= end.as_str());
    }
}
