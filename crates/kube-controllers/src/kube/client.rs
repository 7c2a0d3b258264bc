//! The production [`KubeApi`] and [`LeaseApi`]: kube-rs over rustls (ring),
//! with typed k8s-openapi objects. The controllers are threads; this client
//! owns one small tokio runtime and each call blocks its calling thread on
//! it (never call it from inside an async task).
//!
//! - a list page is `Api::<K>::all().list(ListParams { limit, continue })`;
//! - a watch is `Api::<K>::all().watch(WatchParams { bookmarks }, rv)`,
//!   ended by the server's `timeoutSeconds` or after [`WATCH_IDLE`] without
//!   an event (a silently dead connection);
//! - a 410 response or an `ERROR` event with code 410 is [`KubeError::Gone`];
//! - objects are handed on as JSON (`serde_json::to_value` of the typed
//!   object), the form the pure converters and the reflector take, less
//!   `managedFields` and the `status` of Pods and Nodes (never read, and
//!   most of their size).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease as KubeLease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Collection, KubeApi, KubeError, LeaseApi, object_key};
use crate::lease::{self, Lease};
use crate::reflector::Event;

/// The `timeoutSeconds` asked of a watch (the API server ends it then).
pub const WATCH_TIMEOUT_SECS: u32 = 290;
/// A watch with no event (not even a bookmark) for this long is ended and
/// resumed from its resourceVersion.
pub const WATCH_IDLE: Duration = Duration::from_secs(WATCH_TIMEOUT_SECS as u64 + 30);

/// A Kubernetes API client (cheap to clone: the clones share one runtime
/// and one connection pool).
#[derive(Clone)]
pub struct KubeClient {
    client: kube::Client,
    rt: Arc<tokio::runtime::Runtime>,
    server: Arc<str>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .finish()
    }
}

/// A typed object the controllers list and watch.
trait Object:
    kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + 'static
{
}

impl<K> Object for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + 'static
{
}

/// The error and its sources, `: `-joined (hyper hides the cause in them).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out += ": ";
            out += &t;
        }
        cur = s.source();
    }
    out
}

/// Whether a rustls error is among the sources, also inside an
/// `io::Error` (whose `source()` skips its content), nested as hyper nests them.
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    let inner: Option<&(dyn std::error::Error + 'static)> =
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io.get_ref().map(|i| i as _)
        } else {
            None
        };
    inner.is_some_and(is_tls) || e.source().is_some_and(is_tls)
}

impl KubeClient {
    /// A client for `config` (see [`super::connect`]). Fails with
    /// [`KubeError::Config`] when the TLS settings cannot be used (e.g. a
    /// CA that is not a certificate).
    pub fn new(config: kube::Config) -> Result<KubeClient, KubeError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-client")
            .enable_all()
            .build()
            .map_err(|e| KubeError::Other(format!("starting the client runtime: {e}")))?;
        let server: Arc<str> = config.cluster_url.to_string().into();
        let client = {
            let _in = rt.enter();
            kube::Client::try_from(config)
                .map_err(|e| KubeError::Config(format!("client for {server}: {}", chain(&e))))?
        };
        Ok(KubeClient {
            client,
            rt: Arc::new(rt),
            server,
        })
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn error(&self, e: kube::Error) -> KubeError {
        map_error(&self.server, e)
    }

    fn list_of<K: Object>(&self, limit: usize, cont: Option<&str>) -> Result<Event, KubeError> {
        let api: Api<K> = Api::all(self.client.clone());
        let mut lp = ListParams::default().limit(u32::try_from(limit).unwrap_or(u32::MAX));
        if let Some(c) = cont {
            lp = lp.continue_token(c);
        }
        let list = self.rt.block_on(api.list(&lp)).map_err(|e| self.error(e))?;
        let items = list
            .items
            .iter()
            .map(|o| {
                let v = json_of(o).map_err(|e| KubeError::Other(e.to_string()))?;
                Ok((object_key(&v), v))
            })
            .collect::<Result<Vec<_>, KubeError>>()?;
        Ok(Event::Page {
            items,
            resource_version: list.metadata.resource_version.unwrap_or_default(),
            next: list.metadata.continue_.filter(|c| !c.is_empty()),
        })
    }

    fn watch_of<K: Object>(
        &self,
        resource_version: &str,
    ) -> Result<Box<dyn Iterator<Item = Event> + Send>, KubeError> {
        let api: Api<K> = Api::all(self.client.clone());
        // Bookmarks are on by default (`allowWatchBookmarks=true`).
        let wp = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        let stream = self
            .rt
            .block_on(api.watch(&wp, resource_version))
            .map_err(|e| self.error(e))?;
        let mut stream = Box::pin(stream);
        let (rt, server) = (self.rt.clone(), self.server.clone());
        let mut done = false;
        Ok(Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let next = rt.block_on(async { tokio::time::timeout(WATCH_IDLE, stream.next()).await });
            let out = match next {
                Err(_) => {
                    log::info!(
                        "watch {}: no event for {WATCH_IDLE:?}; resuming",
                        K::kind(&())
                    );
                    None
                }
                Ok(None) => None,
                Ok(Some(Ok(ev))) => Some(watch_event(ev)),
                Ok(Some(Err(kube::Error::SerdeError(e)))) => {
                    // An event not understood: relist rather than skip it.
                    log::warn!("watch {}: {e}", K::kind(&()));
                    Some(Event::Failed)
                }
                Ok(Some(Err(e))) => match map_error(&server, e) {
                    KubeError::Gone => Some(Event::Gone),
                    e => {
                        // A cut stream: resume from the last resourceVersion.
                        log::info!("watch {}: {e}", K::kind(&()));
                        None
                    }
                },
            };
            done = !matches!(
                out,
                Some(Event::Upsert(..) | Event::Delete(..) | Event::Bookmark(_))
            );
            out
        })))
    }
}

/// An object as JSON, without what no controller reads and what makes
/// objects large: `metadata.managedFields`, and the `status` of Pods and
/// Nodes (container states, a Node's image list).
fn json_of<K: Object>(o: &K) -> Result<serde_json::Value, serde_json::Error> {
    let mut v = serde_json::to_value(o)?;
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    if matches!(K::kind(&()).as_ref(), "Pod" | "Node")
        && let Some(m) = v.as_object_mut()
    {
        m.remove("status");
    }
    Ok(v)
}

/// One watch event as the reflector takes it.
fn watch_event<K: Object>(ev: WatchEvent<K>) -> Event {
    let obj = |o: &K| {
        let v = json_of(o).unwrap_or_default();
        let rv = o.meta().resource_version.clone().unwrap_or_default();
        (object_key(&v), v, rv)
    };
    match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
            let (k, v, rv) = obj(&o);
            Event::Upsert(k, v, rv)
        }
        WatchEvent::Deleted(o) => {
            let (k, _, rv) = obj(&o);
            Event::Delete(k, rv)
        }
        WatchEvent::Bookmark(b) => Event::Bookmark(b.metadata.resource_version),
        WatchEvent::Error(s) if s.code == 410 => Event::Gone,
        WatchEvent::Error(s) => {
            log::warn!(
                "watch {}: error event {} {}: {}",
                K::kind(&()),
                s.code,
                s.reason,
                s.message
            );
            Event::Failed
        }
    }
}

/// A kube-rs error as a [`KubeError`] naming its cause.
pub fn map_error(server: &str, e: kube::Error) -> KubeError {
    match e {
        kube::Error::Api(s) => {
            let what = format!("{server}: {} {}", s.reason, s.message);
            match s.code {
                410 => KubeError::Gone,
                401 => KubeError::Unauthorized(format!(
                    "{what}; check the token or client certificate (KUBECONFIG user, or the service account token)"
                )),
                403 => KubeError::Forbidden(format!(
                    "{what}; grant the RBAC permissions of Calico's calico-kube-controllers ClusterRole"
                )),
                c => KubeError::Other(format!("{what} (status {c})")),
            }
        }
        e if is_tls(&e) => KubeError::Tls(format!(
            "{server}: {}; check the CA (kubeconfig certificate-authority[-data], or the service account's ca.crt)",
            chain(&e)
        )),
        e => KubeError::Other(format!("{server}: {}", chain(&e))),
    }
}

impl KubeApi for KubeClient {
    fn list(&self, c: Collection, limit: usize, cont: Option<&str>) -> Result<Event, KubeError> {
        match c {
            Collection::Namespaces => self.list_of::<Namespace>(limit, cont),
            Collection::ServiceAccounts => self.list_of::<ServiceAccount>(limit, cont),
            Collection::Pods => self.list_of::<Pod>(limit, cont),
            Collection::Nodes => self.list_of::<Node>(limit, cont),
            Collection::NetworkPolicies => self.list_of::<NetworkPolicy>(limit, cont),
        }
    }

    fn watch(
        &self,
        c: Collection,
        resource_version: &str,
    ) -> Result<Box<dyn Iterator<Item = Event> + Send>, KubeError> {
        match c {
            Collection::Namespaces => self.watch_of::<Namespace>(resource_version),
            Collection::ServiceAccounts => self.watch_of::<ServiceAccount>(resource_version),
            Collection::Pods => self.watch_of::<Pod>(resource_version),
            Collection::Nodes => self.watch_of::<Node>(resource_version),
            Collection::NetworkPolicies => self.watch_of::<NetworkPolicy>(resource_version),
        }
    }
}

impl LeaseApi for KubeClient {
    fn get_lease(&self, ns: &str, name: &str) -> Result<Option<Lease>, KubeError> {
        let api: Api<KubeLease> = Api::namespaced(self.client.clone(), ns);
        let got = self
            .rt
            .block_on(api.get_opt(name))
            .map_err(|e| self.error(e))?;
        got.map(|l| serde_json::to_value(&l).map(|v| lease::from_json(&v)))
            .transpose()
            .map_err(|e| KubeError::Other(format!("lease {ns}/{name}: {e}")))
    }

    fn write_lease(&self, ns: &str, name: &str, l: &Lease) -> Result<bool, KubeError> {
        let api: Api<KubeLease> = Api::namespaced(self.client.clone(), ns);
        let obj: KubeLease = serde_json::from_value(lease::to_json(ns, name, l))
            .map_err(|e| KubeError::Other(format!("lease {ns}/{name}: {e}")))?;
        let pp = PostParams::default();
        let res = if l.resource_version.is_empty() {
            self.rt.block_on(api.create(&pp, &obj))
        } else {
            self.rt.block_on(api.replace(name, &pp, &obj))
        };
        match res {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: serde_json::Value) -> Event {
        let ev: WatchEvent<Namespace> = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        watch_event(ev)
    }

    #[test]
    fn watch_events_as_the_reflector_takes_them() {
        let ns = json!({"kind": "Namespace", "apiVersion": "v1",
                        "metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "y"}}});
        match event(json!({"type": "MODIFIED", "object": ns})) {
            Event::Upsert(k, v, rv) => {
                assert_eq!((k, rv.as_str()), ((String::new(), "a".to_string()), "7"));
                assert_eq!(v["metadata"]["labels"]["x"], "y");
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(
            event(json!({"type": "DELETED", "object": ns})),
            Event::Delete((String::new(), "a".into()), "7".into())
        );
        assert_eq!(
            event(
                json!({"type": "BOOKMARK", "object": {"kind": "Namespace", "apiVersion": "v1",
                                                        "metadata": {"resourceVersion": "9"}}})
            ),
            Event::Bookmark("9".into())
        );
        let status = |code: u16| {
            json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                   "status": "Failure", "reason": "Expired", "message": "too old", "code": code}})
        };
        let pod: WatchEvent<Pod> = serde_json::from_value(json!({"type": "ADDED", "object": {
            "metadata": {"name": "p", "namespace": "n", "resourceVersion": "3",
                         "managedFields": [{"manager": "kubelet"}]},
            "spec": {"containers": [], "serviceAccountName": "sa"},
            "status": {"phase": "Running"}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        match watch_event(pod) {
            Event::Upsert(k, v, _) => {
                assert_eq!(k, ("n".to_string(), "p".to_string()));
                assert_eq!(v["spec"]["serviceAccountName"], "sa");
                assert!(v.get("status").is_none() && v["metadata"].get("managedFields").is_none());
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(event(status(410)), Event::Gone);
        assert_eq!(event(status(500)), Event::Failed);
    }

    #[test]
    fn api_errors_name_their_cause() {
        let api = |code: u16, reason: &str| {
            let s: kube::core::Status = serde_json::from_value(json!({
                "status": "Failure", "reason": reason, "message": "m", "code": code}))
            .unwrap_or_else(|e| panic!("{e}"));
            map_error("https://k:6443/", kube::Error::Api(Box::new(s)))
        };
        assert!(matches!(api(410, "Expired"), KubeError::Gone));
        let e = api(401, "Unauthorized");
        assert!(matches!(e, KubeError::Unauthorized(_)) && e.is_permanent());
        assert!(e.to_string().contains("401 Unauthorized"), "{e}");
        let e = api(403, "Forbidden");
        assert!(matches!(e, KubeError::Forbidden(_)) && e.to_string().contains("RBAC"));
        let e = api(503, "ServiceUnavailable");
        assert!(!e.is_permanent() && e.to_string().contains("503"), "{e}");
    }
}
