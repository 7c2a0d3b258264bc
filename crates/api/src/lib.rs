//! The `projectcalico.org/v3` resource model of calico-rs.
//!
//! This crate is pure: no I/O, no async. It holds
//! - [`meta`]: object metadata and the generic resource envelope,
//! - [`kind`]: the table of resource kinds (names, plurals, aliases, scope),
//! - [`resources`]: the typed spec of every kind with Calico's defaults and validation,
//! - [`selector`]: the Calico label selector language,
//! - [`k8s`]: the Kubernetes `networking.k8s.io/v1` NetworkPolicy that Calico also enforces,
//! - [`codec`]: reading and writing resources as YAML/JSON documents, as users write them,
//! - [`document`]: a document of a resource file: a Calico resource or a Kubernetes NetworkPolicy,
//! - [`implemented`]: which fields calico-rs acts on, and which it only accepts and stores,
//! - [`validate`]: shared field checks (names, CIDRs, ports, AS numbers).

pub mod codec;
pub mod document;
pub mod implemented;
pub mod k8s;
pub mod kind;
pub mod meta;
pub mod resources;
pub mod selector;
pub mod validate;

pub use codec::{
    DecodeError, decode_documents, decode_json, decode_numbered, decode_numbered_documents,
    decode_value, encode_json, encode_yaml, to_output_value,
};
pub use document::{Document, DocumentKey};
pub use implemented::{kind_not_implemented, not_implemented, not_implemented_note};
pub use kind::Kind;
pub use meta::{ObjectMeta, Resource, ResourceKey};
pub use validate::{FieldError, ValidationError};

/// The API group and version of every resource.
pub const API_VERSION: &str = "projectcalico.org/v3";
