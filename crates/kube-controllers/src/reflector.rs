//! The list/watch protocol of the Kubernetes API as a pure state machine:
//! events in (a list page, a watch event, a watch end, `410 Gone`), actions
//! out (list this page, watch from this resourceVersion, back off). The
//! cache it keeps is the source of a controller's desired state.
//!
//! Invariants:
//! - a full list (all `continue` pages) replaces the cache at once, so a
//!   resync never shows half a list; objects that vanished while the watch
//!   was lost disappear in that replacement (no lost delete);
//! - a watch resumes from the last resourceVersion seen (event or
//!   BOOKMARK), so nothing is seen twice and nothing is skipped;
//! - `410 Gone` (resourceVersion too old) drops the position and relists;
//! - any other failure backs off, doubling from 1 s up to 30 s, and resets
//!   after a successful event.

use std::collections::BTreeMap;
use std::time::Duration;

/// An object as the controller sees it: its key and its JSON.
pub type Key = (String, String);

/// What happened on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A page of a list: its items, the list's resourceVersion, and the
    /// `continue` token if more pages follow.
    Page {
        /// Items of the page, by (namespace, name).
        items: Vec<(Key, serde_json::Value)>,
        /// `metadata.resourceVersion` of the list.
        resource_version: String,
        /// `metadata.continue`, when more follow.
        next: Option<String>,
    },
    /// ADDED or MODIFIED.
    Upsert(Key, serde_json::Value, String),
    /// DELETED.
    Delete(Key, String),
    /// BOOKMARK: only a newer resourceVersion.
    Bookmark(String),
    /// The watch stream ended (server timeout or cut).
    WatchEnded,
    /// `410 Gone` on a list or a watch.
    Gone,
    /// Any other error (connection refused, 5xx).
    Failed,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// List (from the start when `continue_token` is `None`).
    List {
        /// `continue` token of the next page.
        continue_token: Option<String>,
    },
    /// Watch from this resourceVersion (with bookmarks).
    Watch {
        /// Where to resume.
        resource_version: String,
    },
    /// Wait this long, then list again.
    BackOff(Duration),
}

/// A change the controller acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The whole set was replaced (start, or after a watch loss): resync.
    Resync,
    /// One object created or changed.
    Upsert(Key),
    /// One object deleted.
    Delete(Key),
}

/// The list/watch state of one resource type and its cache.
#[derive(Debug, Default)]
pub struct Reflector {
    cache: BTreeMap<Key, serde_json::Value>,
    pending: BTreeMap<Key, serde_json::Value>,
    resource_version: Option<String>,
    backoff: Option<Duration>,
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Reflector {
    /// A reflector that starts by listing.
    pub fn new() -> Reflector {
        Reflector::default()
    }

    /// The first action.
    pub fn start(&self) -> Action {
        Action::List {
            continue_token: None,
        }
    }

    /// The cached objects.
    pub fn cache(&self) -> &BTreeMap<Key, serde_json::Value> {
        &self.cache
    }

    /// The last resourceVersion seen.
    pub fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }

    fn relist(&mut self) -> Action {
        self.pending.clear();
        self.resource_version = None;
        Action::List {
            continue_token: None,
        }
    }

    fn watch(&self) -> Action {
        match &self.resource_version {
            Some(rv) => Action::Watch {
                resource_version: rv.clone(),
            },
            None => Action::List {
                continue_token: None,
            },
        }
    }

    /// Takes in one event: the changes to act on and the next action
    /// (`None` while a watch stream is still open).
    pub fn step(&mut self, ev: Event) -> (Vec<Change>, Option<Action>) {
        match ev {
            Event::Page {
                items,
                resource_version,
                next,
            } => {
                self.pending.extend(items);
                match next {
                    Some(token) => (
                        Vec::new(),
                        Some(Action::List {
                            continue_token: Some(token),
                        }),
                    ),
                    None => {
                        self.cache = std::mem::take(&mut self.pending);
                        self.resource_version = Some(resource_version);
                        self.backoff = None;
                        (vec![Change::Resync], Some(self.watch()))
                    }
                }
            }
            Event::Upsert(k, v, rv) => {
                self.backoff = None;
                self.resource_version = Some(rv);
                let changed = self.cache.get(&k) != Some(&v);
                self.cache.insert(k.clone(), v);
                let out = if changed {
                    vec![Change::Upsert(k)]
                } else {
                    Vec::new()
                };
                (out, None)
            }
            Event::Delete(k, rv) => {
                self.backoff = None;
                self.resource_version = Some(rv);
                let out = if self.cache.remove(&k).is_some() {
                    vec![Change::Delete(k)]
                } else {
                    Vec::new()
                };
                (out, None)
            }
            Event::Bookmark(rv) => {
                self.resource_version = Some(rv);
                (Vec::new(), None)
            }
            Event::WatchEnded => (Vec::new(), Some(self.watch())),
            Event::Gone => (Vec::new(), Some(self.relist())),
            Event::Failed => {
                let next = self
                    .backoff
                    .map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
                self.backoff = Some(next);
                self.pending.clear();
                (Vec::new(), Some(Action::BackOff(next)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
