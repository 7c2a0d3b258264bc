//! calico-kube-controllers: keeps what lives in the Kubernetes API in the
//! Calico datastore, as Calico's `calico-kube-controllers` does with an etcd
//! datastore.
//!
//! Layout:
//! - [`convert`]: the I/O-free core — Kubernetes objects to the Calico
//!   documents they become (namespace and service-account profiles, mirrored
//!   NetworkPolicies, workload endpoint labels);
//! - [`ipamgc`]: which IPAM allocations are leaked (node gone, or pod gone
//!   for a grace period), pure;
//! - [`node`]: the node controller's clean-up pass over the store;
//! - [`reflector`]: the Kubernetes list/watch protocol (pages, bookmarks,
//!   410 Gone → relist, back-off) as a pure state machine with its cache;
//! - [`lease`]: leader election over a coordination.k8s.io/v1 Lease
//!   (pure decision; the write is a CAS on the Lease's resourceVersion);
//! - [`kube`]: the Kubernetes API surface as traits (`KubeApi`: list pages,
//!   watch streams; `LeaseApi`), the list/watch loop driving a reflector,
//!   and the election round; [`kube::client`] is the production adapter on
//!   kube-rs and k8s-openapi (rustls with ring, one small tokio runtime
//!   bridged to the controller threads); [`kube::connect`] finds its
//!   settings as Calico does (`KUBECONFIG`, else the in-cluster service
//!   account; `K8S_API_ENDPOINT` overrides the server);
//! - [`status`]: the readiness status file Calico's `check-status -l/-r`
//!   reads (binary `check-status`);
//! - [`config`]: the controller settings from the environment, as Calico reads
//!   them (`ENABLED_CONTROLLERS`, `LOG_LEVEL`, ...);
//! - [`controllers`]: each controller's desired state from its cache, and
//!   the profile and policy controllers, which write one document per
//!   change;
//! - [`sync`]: reconcile a desired set against the store: read, compare,
//!   write only what differs, each write a compare-and-swap on the read
//!   resourceVersion (re-applying the same state writes nothing); a
//!   `StoreCache` keeps what was last read or written, so the store is
//!   listed in full only at start and after a watch loss.

#![warn(missing_docs)]

pub mod config;
pub mod controllers;
pub mod convert;
pub mod ipamgc;
pub mod kube;
pub mod lease;
pub mod node;
pub mod reflector;
pub mod status;
pub mod sync;
