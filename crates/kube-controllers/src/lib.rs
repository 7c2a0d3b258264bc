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
//! - [`config`]: the controller settings from the environment, as Calico reads
//!   them (`ENABLED_CONTROLLERS`, `LOG_LEVEL`, ...);
//! - [`sync`]: reconcile a desired set against the store: read, compare,
//!   write only what differs, each write a compare-and-swap on the read
//!   resourceVersion (re-applying the same state writes nothing).

#![warn(missing_docs)]

pub mod config;
pub mod convert;
pub mod ipamgc;
pub mod node;
pub mod sync;
