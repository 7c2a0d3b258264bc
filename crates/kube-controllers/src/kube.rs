//! The Kubernetes API surface the controllers use, as traits owned by them:
//! [`KubeApi`] (list pages and watch streams of one [`Collection`]) and
//! [`LeaseApi`] (get, create and replace a Lease at its resourceVersion).
//! The production adapter is [`client::KubeClient`], built on kube-rs and
//! k8s-openapi; [`connect`] loads its settings as Calico does (`KUBECONFIG`,
//! else the in-cluster service account). Unit tests use in-memory fakes of
//! the traits.
//!
//! [`run`] drives one [`crate::reflector::Reflector`] with a `KubeApi`: a
//! `410 Gone` (a 410 response, or an `ERROR` watch event whose Status code is
//! 410) is [`KubeError::Gone`] and becomes a relist; other failures back off.

use std::time::Duration;

use crate::lease::{self, Lease};
use crate::reflector::{Action, Change, Event, Key, Reflector};

pub mod client;
pub mod connect;

/// Errors of the API, each naming its cause.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// 410 Gone: the resourceVersion is too old.
    #[error("resource version too old (410 Gone)")]
    Gone,
    /// The client settings could not be loaded (kubeconfig, in-cluster files).
    #[error("kubernetes client settings: {0}")]
    Config(String),
    /// The TLS handshake with the API server failed (e.g. a wrong CA).
    #[error("TLS with the kubernetes api server failed: {0}")]
    Tls(String),
    /// 401: the API server did not accept the credentials.
    #[error("kubernetes api server refused the credentials (401 Unauthorized): {0}")]
    Unauthorized(String),
    /// 403: the credentials lack a permission.
    #[error("kubernetes api server denied access (403 Forbidden): {0}")]
    Forbidden(String),
    /// Any other failure (connection refused, 5xx, a body not understood).
    #[error("kubernetes api: {0}")]
    Other(String),
}

impl KubeError {
    /// Whether retrying cannot help without a change of settings (wrong
    /// CA, refused or insufficient credentials, broken configuration).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            KubeError::Config(_)
                | KubeError::Tls(_)
                | KubeError::Unauthorized(_)
                | KubeError::Forbidden(_)
        )
    }
}

/// The collections the controllers list and watch (all namespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    /// `v1` Namespaces.
    Namespaces,
    /// `v1` ServiceAccounts.
    ServiceAccounts,
    /// `v1` Pods.
    Pods,
    /// `v1` Nodes.
    Nodes,
    /// `networking.k8s.io/v1` NetworkPolicies.
    NetworkPolicies,
}

impl Collection {
    /// The collection's path on the API server.
    pub fn path(self) -> &'static str {
        match self {
            Collection::Namespaces => "/api/v1/namespaces",
            Collection::ServiceAccounts => "/api/v1/serviceaccounts",
            Collection::Pods => "/api/v1/pods",
            Collection::Nodes => "/api/v1/nodes",
            Collection::NetworkPolicies => "/apis/networking.k8s.io/v1/networkpolicies",
        }
    }
}

/// List and watch of one collection.
pub trait KubeApi: Send + Sync {
    /// One list page (`limit`, `continue`) as an [`Event::Page`].
    fn list(&self, c: Collection, limit: usize, cont: Option<&str>) -> Result<Event, KubeError>;
    /// A watch from `resource_version` with bookmarks; events until the
    /// stream ends.
    fn watch(
        &self,
        c: Collection,
        resource_version: &str,
    ) -> Result<Box<dyn Iterator<Item = Event> + Send>, KubeError>;
}

/// The key of an API object: (namespace, name).
pub fn object_key(o: &serde_json::Value) -> Key {
    let s = |f: &str| {
        o.pointer(&format!("/metadata/{f}"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

/// Lease objects for leader election.
pub trait LeaseApi {
    /// The Lease `ns/name`, if it exists.
    fn get_lease(&self, ns: &str, name: &str) -> Result<Option<Lease>, KubeError>;
    /// Creates (no resourceVersion) or replaces (at its resourceVersion) the
    /// Lease; `false` on 409 Conflict (someone else wrote first).
    fn write_lease(&self, ns: &str, name: &str, l: &Lease) -> Result<bool, KubeError>;
}

/// One election round for replica `me` at `now` (seconds since the epoch):
/// read the Lease, decide, write with compare-and-swap. True when `me`
/// holds the lease after this round.
pub fn elect(
    api: &dyn LeaseApi,
    ns: &str,
    name: &str,
    me: &str,
    duration: Duration,
    now: u64,
) -> Result<bool, KubeError> {
    let read = api.get_lease(ns, name)?;
    match lease::decide(me, read.as_ref(), now, duration) {
        lease::Decision::Write(l) => api.write_lease(ns, name, &l),
        lease::Decision::Follow { .. } => Ok(false),
    }
}

/// Runs one collection's list/watch loop until `stop` returns true, calling
/// `on_change` with the reflector after every change it reports. A
/// permanent error (see [`KubeError::is_permanent`]) is logged as an error
/// and backed off like any other.
pub fn run(
    api: &dyn KubeApi,
    c: Collection,
    page: usize,
    stop: &dyn Fn() -> bool,
    on_change: &mut dyn FnMut(&Reflector, &[Change]),
) {
    let path = c.path();
    let failed = |what: &str, e: KubeError| {
        if e.is_permanent() {
            log::error!("{what} {path}: {e}");
        } else {
            log::warn!("{what} {path}: {e}");
        }
        Event::Failed
    };
    let mut r = Reflector::new();
    let mut next = r.start();
    while !stop() {
        let events: Box<dyn Iterator<Item = Event>> = match &next {
            Action::List { continue_token } => {
                let ev = match api.list(c, page, continue_token.as_deref()) {
                    Ok(ev) => ev,
                    Err(KubeError::Gone) => Event::Gone,
                    Err(e) => failed("list", e),
                };
                Box::new(std::iter::once(ev))
            }
            Action::Watch { resource_version } => match api.watch(c, resource_version) {
                Ok(s) => Box::new(s.chain(std::iter::once(Event::WatchEnded))),
                Err(KubeError::Gone) => Box::new(std::iter::once(Event::Gone)),
                Err(e) => Box::new(std::iter::once(failed("watch", e))),
            },
            Action::BackOff(d) => {
                sleep_unless(*d, stop);
                next = Action::List {
                    continue_token: None,
                };
                continue;
            }
        };
        for ev in events {
            let (changes, action) = r.step(ev);
            if !changes.is_empty() {
                on_change(&r, &changes);
            }
            if let Some(a) = action {
                next = a;
                break;
            }
            if stop() {
                return;
            }
        }
    }
}

/// Sleeps `d` in short steps, returning early once `stop` is true.
fn sleep_unless(d: Duration, stop: &dyn Fn() -> bool) {
    let end = std::time::Instant::now() + d;
    while !stop() {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}
