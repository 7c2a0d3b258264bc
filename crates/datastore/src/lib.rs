//! The calico-rs datastore: one [`Store`] interface, two backends.
//!
//! - [`local::LocalStore`]: the default, an embedded SQLite file in WAL mode
//!   that many processes on one host share safely.
//! - [`etcd::EtcdStore`]: etcd v3, for clusters.
//!
//! Both give the same semantics, checked by one conformance suite
//! (`tests/conformance.rs`): a global revision that grows with every write,
//! per-key create/mod revisions, all-or-nothing compare-and-swap
//! transactions, prefix listing at a consistent revision, and watches that
//! start at a revision and never lose or repeat an event.
//!
//! [`client::Client`] layers `projectcalico.org/v3` resources on top, with
//! Calico's key layout ([`keys`]) and optimistic concurrency through
//! `metadata.resourceVersion`. [`config::DatastoreConfig`] reads the
//! settings users already have (environment, calicoctl.cfg, CNI config).
//!
//! The interface is synchronous: CNI plugins and calicoctl are short-lived
//! processes; async callers use `spawn_blocking`.

pub mod client;
pub mod config;
pub mod etcd;
pub mod keys;
pub mod local;
mod store;
pub mod time;

pub use client::{Client, ClientError};
pub use config::{ConfigError, DatastoreConfig};
pub use store::{
    Compare, Event, EventKind, KeyValue, Op, Revision, Store, StoreError, Watch, prefix_end,
};
