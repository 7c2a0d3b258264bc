//! Typed access to `projectcalico.org/v3` resources over any [`Store`].
//!
//! Invariants:
//! - the stored value is the resource's JSON without `resourceVersion`; the
//!   resourceVersion users see is the key's mod revision;
//! - `uid` and `creationTimestamp` are set on create and kept on update;
//! - every write is a compare-and-swap on the key's revision, so a stale
//!   `resourceVersion` (or a concurrent writer) gives [`ClientError::Conflict`];
//! - a resource is validated (and Calico's defaults filled) before any write,
//!   and is at most [`MAX_RESOURCE_BYTES`] as stored;
//!   cross-resource rules (pools must not overlap, a pool's CIDR and block
//!   size cannot change, a policy's tier must exist, the `default` tier and
//!   tiers that hold policies cannot be deleted) are checked against the store;
//! - [`Client::write_batch`] writes a checked batch in transactions within
//!   [`TxnLimits`] (etcd's, or the whole batch at once), each a
//!   compare-and-swap on every key it writes (`client/batch.rs`);
//! - Kubernetes `networking.k8s.io/v1` NetworkPolicies are stored the same way
//!   under their own root ([`keys::K8S_NETWORK_POLICY_ROOT`]) and read back
//!   with [`Client::list_k8s_network_policies`]; every write path takes a
//!   [`Document`] (either kind), the `Resource` methods are shorthands.

use std::sync::Arc;
use std::time::Duration;

use calico_api::k8s;
use calico_api::resources::{DEFAULT_TIER, overlaps};
use calico_api::{Document, DocumentKey, Kind, Resource, ResourceKey, ValidationError};

mod batch;

pub use batch::{BatchWriter, Existing, MAX_RESOURCE_BYTES, MAX_TXN_BYTES, MAX_TXN_OPS, TxnLimits};

use crate::keys;
use crate::store::{Compare, EventKind, KeyValue, Op, Revision, Store, StoreError, Watch};

/// How many resources [`Client::update_batch`] writes in one transaction
/// (etcd takes 128 operations in one by default).
pub const BATCH: usize = 100;

/// Errors of resource operations, worded as Calico words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No such resource.
    #[error("resource does not exist: {0}")]
    NotFound(DocumentKey),
    /// Create of a resource that exists.
    #[error("resource already exists: {0}")]
    AlreadyExists(DocumentKey),
    /// The resource changed since the given resourceVersion was read.
    #[error(
        "update conflict: {key} has resourceVersion {current}, not {given}: get it again and retry"
    )]
    Conflict {
        /// The resource.
        key: DocumentKey,
        /// The resourceVersion the caller had.
        given: String,
        /// The resourceVersion in the store.
        current: String,
    },
    /// The resource is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A rule that spans resources was broken (e.g. overlapping pools).
    #[error("{0}")]
    Rejected(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value could not be decoded.
    #[error("stored value of {key} is unreadable: {reason}")]
    Corrupt {
        /// The store key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A change to a resource, as seen by [`ResourceWatch`].
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // events are consumed one at a time; boxing buys nothing
pub enum ResourceEvent {
    /// Created or updated; carries the new state.
    Upserted(Resource),
    /// Deleted.
    Deleted(ResourceKey, Revision),
}

/// The typed resource client.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
}

impl Client {
    /// A client over `store`.
    pub fn new(store: Arc<dyn Store>) -> Client {
        Client { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Decodes a stored value: what its key's root says it is, strictly.
    pub fn decode(kv: &KeyValue) -> Result<Document, ClientError> {
        let corrupt = |reason: String| ClientError::Corrupt {
            key: kv.key.clone(),
            reason,
        };
        let mut d = if kv.key.starts_with(keys::K8S_NETWORK_POLICY_ROOT) {
            let v: serde_json::Value =
                serde_json::from_slice(&kv.value).map_err(|e| corrupt(e.to_string()))?;
            k8s::NetworkPolicy::from_json(v).map(Document::KubernetesNetworkPolicy)
        } else {
            calico_api::decode_json(&kv.value).map(Document::Calico)
        }
        .map_err(corrupt)?;
        d.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
        Ok(d)
    }

    fn decode_resource(kv: &KeyValue) -> Result<Resource, ClientError> {
        Self::decode(kv).and_then(calico)
    }

    fn encode(d: &Document) -> Vec<u8> {
        let mut d = d.clone();
        d.metadata_mut().resource_version = None;
        serde_json::to_vec(&d.to_json()).unwrap_or_default()
    }

    /// Fills defaults and validates `r` on its own (no store access).
    pub fn prepare(r: Resource) -> Result<Resource, ClientError> {
        Self::prepare_document(r.into()).and_then(calico)
    }

    /// Fills the namespace (`default` when none), defaults, and validates a
    /// document on its own (no store access).
    pub fn prepare_document(mut d: Document) -> Result<Document, ClientError> {
        d.default_namespace("default");
        d.set_defaults();
        d.validate()?;
        let size = Self::encode(&d).len();
        if size > MAX_RESOURCE_BYTES {
            return Err(ClientError::Rejected(format!(
                "{} is {:.1} MiB as stored, larger than the 1 MiB one resource may be (etcd refuses requests over 1.5 MiB): split it into several resources",
                d.key(),
                size as f64 / f64::from(1 << 20)
            )));
        }
        Ok(d)
    }

    /// Checks the rules that involve other resources: `r` is about to be
    /// written, `batch` holds the other resources written with it.
    pub fn check_cluster_rules(&self, r: &Resource, batch: &[Resource]) -> Result<(), ClientError> {
        let tier = match r {
            Resource::NetworkPolicy(p) => p.spec.tier.as_deref(),
            Resource::GlobalNetworkPolicy(p) => p.spec.tier.as_deref(),
            _ => None,
        };
        if let Some(t) = tier.filter(|t| !t.is_empty() && *t != DEFAULT_TIER) {
            self.check_tier_exists(r, t, batch)?;
        }
        let Resource::IPPool(pool) = r else {
            return Ok(());
        };
        let Some(net) = pool.spec.net() else {
            return Ok(());
        };
        let (existing, _) = self.list(Kind::IPPool, None)?;
        if let Some(Resource::IPPool(old)) = existing
            .iter()
            .find(|e| e.metadata().name == pool.metadata.name)
        {
            if old.spec.net().map(|n| n.trunc()) != Some(net.trunc()) {
                return Err(ClientError::Rejected(format!(
                    "IPPool({}): the CIDR of an existing pool cannot be changed (it is {}); create a new pool instead",
                    pool.metadata.name, old.spec.cidr
                )));
            }
            if old.spec.block_size() != pool.spec.block_size() {
                return Err(ClientError::Rejected(format!(
                    "IPPool({}): the block size of an existing pool cannot be changed (it is {})",
                    pool.metadata.name,
                    old.spec.block_size()
                )));
            }
        }
        let in_batch = batch.iter().filter(|b| !std::ptr::eq(*b, r));
        for other in existing.iter().chain(in_batch) {
            let Resource::IPPool(o) = other else { continue };
            if o.metadata.name == pool.metadata.name {
                continue;
            }
            if o.spec.net().is_some_and(|n| overlaps(&n, &net)) {
                return Err(ClientError::Rejected(format!(
                    "IPPool({}): {} overlaps with IPPool({}) {}",
                    pool.metadata.name, pool.spec.cidr, o.metadata.name, o.spec.cidr
                )));
            }
        }
        Ok(())
    }

    /// A policy's tier must exist, in the store or in the same batch (as
    /// Calico's client checks on create; the `default` tier always exists).
    fn check_tier_exists(
        &self,
        r: &Resource,
        tier: &str,
        batch: &[Resource],
    ) -> Result<(), ClientError> {
        let in_batch = batch
            .iter()
            .any(|b| b.kind() == Kind::Tier && b.metadata().name == tier);
        let key = ResourceKey {
            kind: Kind::Tier,
            namespace: None,
            name: tier.to_string(),
        };
        if in_batch || self.store.get(&keys::resource_key(&key))?.is_some() {
            return Ok(());
        }
        Err(ClientError::Rejected(format!(
            "{}: spec.tier: resource does not exist: {key}: create the tier first",
            r.key()
        )))
    }

    /// The `default` tier, and a tier that still holds policies, cannot be
    /// deleted (as Calico's client).
    fn check_tier_deletable(&self, name: &str) -> Result<(), ClientError> {
        if name == DEFAULT_TIER {
            return Err(ClientError::Rejected(format!(
                "Tier({name}): the default tier cannot be deleted"
            )));
        }
        for kind in [Kind::NetworkPolicy, Kind::GlobalNetworkPolicy] {
            let (policies, _) = self.list(kind, None)?;
            let member = policies.iter().find(|p| match p {
                Resource::NetworkPolicy(p) => p.spec.tier.as_deref() == Some(name),
                Resource::GlobalNetworkPolicy(p) => p.spec.tier.as_deref() == Some(name),
                _ => false,
            });
            if let Some(p) = member {
                return Err(ClientError::Rejected(format!(
                    "Tier({name}): cannot delete a non-empty tier: {} is in it; delete its policies or move them to another tier first",
                    p.key()
                )));
            }
        }
        Ok(())
    }

    /// Creates `r`; fails if it exists.
    pub fn create(&self, r: Resource) -> Result<Resource, ClientError> {
        let r = Self::prepare(r)?;
        self.check_cluster_rules(&r, &[])?;
        let mut d = r.into();
        self.create_prepared(&mut d)?;
        calico(d)
    }

    fn create_prepared(&self, r: &mut Document) -> Result<(), ClientError> {
        let key = r.key();
        let skey = keys::document_key(&key);
        let m = r.metadata_mut();
        m.resource_version = None;
        m.uid = Some(crate::time::uuid4());
        m.creation_timestamp = Some(crate::time::now_rfc3339());
        let value = Self::encode(r);
        match self
            .store
            .txn(&[Compare::absent(&skey)], &[Op::Put { key: skey, value }])?
        {
            Some(rev) => {
                r.metadata_mut().resource_version = Some(rev.to_string());
                Ok(())
            }
            None => Err(ClientError::AlreadyExists(key)),
        }
    }

    /// Replaces an existing `r`. With a resourceVersion, it must be current.
    pub fn update(&self, r: Resource) -> Result<Resource, ClientError> {
        let r = Self::prepare(r)?;
        self.check_cluster_rules(&r, &[])?;
        let mut d = r.into();
        self.update_prepared(&mut d)?;
        calico(d)
    }

    fn update_prepared(&self, r: &mut Document) -> Result<(), ClientError> {
        let key = r.key();
        let skey = keys::document_key(&key);
        let current = self
            .store
            .get(&skey)?
            .ok_or_else(|| ClientError::NotFound(key.clone()))?;
        let given = r.metadata().resource_version.clone();
        if let Some(g) = &given
            && *g != current.mod_revision.to_string()
        {
            return Err(ClientError::Conflict {
                key,
                given: g.clone(),
                current: current.mod_revision.to_string(),
            });
        }
        let old = Self::decode(&current)?;
        let m = r.metadata_mut();
        m.uid = old.metadata().uid.clone();
        m.creation_timestamp = old.metadata().creation_timestamp.clone();
        let value = Self::encode(r);
        match self.store.txn(
            &[Compare::at(&skey, current.mod_revision)],
            &[Op::Put {
                key: skey.clone(),
                value,
            }],
        )? {
            Some(rev) => {
                r.metadata_mut().resource_version = Some(rev.to_string());
                Ok(())
            }
            None => {
                let now = self
                    .store
                    .get(&skey)?
                    .map(|kv| kv.mod_revision.to_string())
                    .unwrap_or_else(|| "none".into());
                Err(ClientError::Conflict {
                    key,
                    given: given.unwrap_or_else(|| current.mod_revision.to_string()),
                    current: now,
                })
            }
        }
    }

    /// Replaces existing resources, each at the resourceVersion it carries
    /// (as read), [`BATCH`] to a transaction: a transaction writes all of
    /// its resources or none. When one of them changed since it was read,
    /// that transaction's resources are written one by one instead, so the
    /// changed one gets its [`ClientError::Conflict`] and the others are
    /// written. A resource without a resourceVersion is updated alone, as
    /// [`Client::update`] does. One result per resource, in order.
    pub fn update_batch(&self, rs: Vec<Resource>) -> Vec<Result<Resource, ClientError>> {
        let mut out: Vec<Result<Resource, ClientError>> = Vec::with_capacity(rs.len());
        let mut ready: Vec<(usize, Document, String, Revision)> = Vec::new();
        for r in rs {
            let at = out.len();
            // Each entry is replaced by its outcome below.
            out.push(Err(ClientError::Rejected("not written".into())));
            let prepared = Self::prepare(r).and_then(|r| {
                self.check_cluster_rules(&r, &[])?;
                Ok(Document::from(r))
            });
            let d = match prepared {
                Ok(d) => d,
                Err(e) => {
                    out[at] = Err(e);
                    continue;
                }
            };
            match d
                .metadata()
                .resource_version
                .as_deref()
                .map(str::parse::<Revision>)
            {
                Some(Ok(rev)) => {
                    let skey = keys::document_key(&d.key());
                    ready.push((at, d, skey, rev));
                }
                _ => {
                    let mut d = d;
                    out[at] = self.update_prepared(&mut d).and_then(|()| calico(d));
                }
            }
        }
        let mut ready = ready.into_iter().peekable();
        while ready.peek().is_some() {
            let chunk: Vec<_> = ready.by_ref().take(BATCH).collect();
            let compares: Vec<Compare> = chunk
                .iter()
                .map(|(_, _, k, rev)| Compare::at(k.clone(), *rev))
                .collect();
            let ops: Vec<Op> = chunk
                .iter()
                .map(|(_, d, k, _)| Op::Put {
                    key: k.clone(),
                    value: Self::encode(d),
                })
                .collect();
            match self.store.txn(&compares, &ops) {
                Ok(Some(rev)) => {
                    for (at, mut d, _, _) in chunk {
                        d.metadata_mut().resource_version = Some(rev.to_string());
                        out[at] = calico(d);
                    }
                }
                Ok(None) => {
                    for (at, mut d, _, _) in chunk {
                        out[at] = self.update_prepared(&mut d).and_then(|()| calico(d));
                    }
                }
                Err(e) => {
                    let e = ClientError::from(e);
                    for (at, _, _, _) in chunk {
                        out[at] = Err(e.clone());
                    }
                }
            }
        }
        out
    }

    /// Creates `r`, or updates it if it exists.
    pub fn apply(&self, r: Resource) -> Result<Resource, ClientError> {
        let r = Self::prepare(r)?;
        self.check_cluster_rules(&r, &[])?;
        let mut d = r.into();
        self.apply_prepared(&mut d)?;
        calico(d)
    }

    fn apply_prepared(&self, r: &mut Document) -> Result<(), ClientError> {
        // Two rounds cover a concurrent create or delete between our read and write.
        for _ in 0..2 {
            let exists = self.store.get(&keys::document_key(&r.key()))?.is_some();
            let res = if exists {
                self.update_prepared(r)
            } else {
                self.create_prepared(r)
            };
            match res {
                Err(ClientError::AlreadyExists(_)) | Err(ClientError::NotFound(_)) => continue,
                other => return other,
            }
        }
        if r.metadata().resource_version.is_some() {
            self.update_prepared(r)
        } else {
            self.create_prepared(r)
        }
    }

    /// Writes a batch that has already been prepared and checked, in order.
    /// `op` is `create`, `apply` or `replace`. Returns the written documents;
    /// on the first failure, the error and how many were written.
    pub fn write_prepared(
        &self,
        op: WriteOp,
        batch: Vec<Document>,
    ) -> Result<Vec<Document>, (usize, ClientError)> {
        let mut out = Vec::with_capacity(batch.len());
        for mut r in batch {
            let res = match op {
                WriteOp::Create => self.create_prepared(&mut r),
                WriteOp::Apply => self.apply_prepared(&mut r),
                WriteOp::Replace => self.update_prepared(&mut r),
            };
            match res {
                Ok(()) => out.push(r),
                Err(e) => return Err((out.len(), e)),
            }
        }
        Ok(out)
    }

    /// Deletes a resource; with `resource_version`, only if it is current.
    pub fn delete(
        &self,
        key: &ResourceKey,
        resource_version: Option<&str>,
    ) -> Result<Resource, ClientError> {
        self.delete_document(&key.clone().into(), resource_version)
            .and_then(calico)
    }

    /// Deletes a document; with `resource_version`, only if it is current.
    pub fn delete_document(
        &self,
        key: &DocumentKey,
        resource_version: Option<&str>,
    ) -> Result<Document, ClientError> {
        if let DocumentKey::Calico(k) = key
            && k.kind == Kind::Tier
        {
            self.check_tier_deletable(&k.name)?;
        }
        let skey = keys::document_key(key);
        let current = self
            .store
            .get(&skey)?
            .ok_or_else(|| ClientError::NotFound(key.clone()))?;
        let rev = current.mod_revision.to_string();
        if let Some(g) = resource_version
            && g != rev
        {
            return Err(ClientError::Conflict {
                key: key.clone(),
                given: g.to_string(),
                current: rev,
            });
        }
        let old = Self::decode(&current)?;
        match self.store.txn(
            &[Compare::at(&skey, current.mod_revision)],
            &[Op::Delete { key: skey }],
        )? {
            Some(_) => Ok(old),
            None => Err(ClientError::Conflict {
                key: key.clone(),
                given: resource_version.unwrap_or(&rev).to_string(),
                current: "changed".into(),
            }),
        }
    }

    /// One resource.
    pub fn get(&self, key: &ResourceKey) -> Result<Resource, ClientError> {
        self.get_document(&key.clone().into()).and_then(calico)
    }

    /// One document (a Calico resource or a Kubernetes NetworkPolicy).
    pub fn get_document(&self, key: &DocumentKey) -> Result<Document, ClientError> {
        let kv = self
            .store
            .get(&keys::document_key(key))?
            .ok_or_else(|| ClientError::NotFound(key.clone()))?;
        Self::decode(&kv)
    }

    /// The stored Kubernetes NetworkPolicies (in `namespace`, or in all
    /// namespaces when `None`), sorted by namespace and name, each with its
    /// `resourceVersion`, and the revision of the read. Calico enforces each
    /// as the NetworkPolicy `knp.default.<name>` (`calico_policy::k8s::convert`).
    pub fn list_k8s_network_policies(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<k8s::NetworkPolicy>, Revision), ClientError> {
        let (kvs, rev) = self
            .store
            .list(&keys::k8s_network_policy_prefix(namespace))?;
        let list = kvs
            .iter()
            .map(|kv| match Self::decode(kv)? {
                Document::KubernetesNetworkPolicy(np) => Ok(np),
                other => Err(not_kind(other, k8s::QUALIFIED_KIND)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, rev))
    }

    /// Every resource of `kind` (in `namespace`, or all namespaces when
    /// `None`), sorted by namespace and name, and the revision of the read.
    /// Like [`Client::list`], but a stored entry that does not decode is
    /// returned as an error message beside the good ones instead of failing
    /// the whole list (agents log it and carry on).
    pub fn list_lenient(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<(Vec<Resource>, Vec<String>, Revision), ClientError> {
        let (kvs, rev) = self.store.list(&keys::kind_prefix(kind, namespace))?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for kv in &kvs {
            match Self::decode_resource(kv) {
                Ok(r) => good.push(r),
                Err(e) => bad.push(e.to_string()),
            }
        }
        Ok((good, bad, rev))
    }

    /// Every resource of `kind` (in `namespace`, or all namespaces when
    /// `None`), sorted by namespace and name, and the revision of the read.
    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
    ) -> Result<(Vec<Resource>, Revision), ClientError> {
        let (kvs, rev) = self.store.list(&keys::kind_prefix(kind, namespace))?;
        let list = kvs
            .iter()
            .map(Self::decode_resource)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, rev))
    }

    /// The resources of `kind` in `namespace` whose names start with
    /// `name_prefix` (one prefix read of the store), sorted by name.
    pub fn list_named(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name_prefix: &str,
    ) -> Result<Vec<Resource>, ClientError> {
        let prefix = format!("{}{name_prefix}", keys::kind_prefix(kind, namespace));
        let (kvs, _) = self.store.list(&prefix)?;
        kvs.iter().map(Self::decode_resource).collect()
    }

    /// Changes to resources of `kind` from revision `from`.
    pub fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        from: Revision,
    ) -> Result<ResourceWatch, ClientError> {
        let prefix = keys::kind_prefix(kind, namespace);
        let inner = self.store.watch(&prefix, from)?;
        Ok(ResourceWatch {
            inner,
            kind,
            prefix,
        })
    }
}

/// The Calico resource in `d`; the write paths keep a document's variant, and
/// a Calico key only ever decodes to a Calico resource.
fn calico(d: Document) -> Result<Resource, ClientError> {
    match d {
        Document::Calico(r) => Ok(r),
        other => Err(not_kind(other, "projectcalico.org/v3 resource")),
    }
}

fn not_kind(d: Document, wanted: &str) -> ClientError {
    ClientError::Corrupt {
        key: keys::document_key(&d.key()),
        reason: format!("a {} where a {wanted} was expected", d.kind_name()),
    }
}

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// Fail on existing resources.
    Create,
    /// Create or update.
    Apply,
    /// Update existing resources only.
    Replace,
}

/// A typed watch of one kind.
pub struct ResourceWatch {
    inner: Box<dyn Watch>,
    kind: Kind,
    prefix: String,
}

impl ResourceWatch {
    /// The next change, or `None` after `timeout` without one.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<ResourceEvent>, ClientError> {
        let Some(ev) = self.inner.next(timeout)? else {
            return Ok(None);
        };
        match ev.kind {
            EventKind::Put => {
                let kv = KeyValue {
                    key: ev.key,
                    value: ev.value,
                    create_revision: 0,
                    mod_revision: ev.mod_revision,
                };
                Ok(Some(ResourceEvent::Upserted(Client::decode_resource(&kv)?)))
            }
            EventKind::Delete => {
                let rest = ev.key.strip_prefix(&self.prefix).unwrap_or(&ev.key);
                let (namespace, name) = match rest.split_once('/') {
                    Some((ns, n)) if self.kind.namespaced() => {
                        (Some(ns.to_string()), n.to_string())
                    }
                    _ => (None, rest.to_string()),
                };
                let namespace = namespace.or_else(|| {
                    // A watch scoped to one namespace has it in the prefix.
                    self.kind.namespaced().then(|| {
                        self.prefix
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                });
                Ok(Some(ResourceEvent::Deleted(
                    ResourceKey {
                        kind: self.kind,
                        namespace,
                        name,
                    },
                    ev.mod_revision,
                )))
            }
        }
    }
}
