//! Writing a big checked batch ([`BatchWriter`], [`Client::write_batch`]):
//! the stored state of its keys read in few requests ([`Client::existing`]),
//! then transactions within [`TxnLimits`] (etcd's defaults: 128 operations,
//! 1.5 MiB per request; the local store: the whole batch in one), each a
//! compare-and-swap on every key it writes, so all or nothing. A pending
//! transaction holds encoded values, not documents.

use std::collections::{HashMap, HashSet};

use calico_api::{Document, DocumentKey};

use super::{Client, ClientError, WriteOp};
use crate::keys;
use crate::store::{Compare, KeyValue, Op, Revision};

/// The largest resource, as stored (its JSON): etcd refuses a request over
/// 1.5 MiB by default, and a write carries the key and a compare beside it.
pub const MAX_RESOURCE_BYTES: usize = 1 << 20;
/// Most documents in one transaction of [`Client::write_batch`]: etcd's
/// default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;
/// Most bytes of keys and values in one transaction of
/// [`Client::write_batch`] (a lone larger resource goes alone).
pub const MAX_TXN_BYTES: usize = 1 << 20;
/// [`Client::existing`] lists a prefix when the batch has this many keys under it.
const LIST_WHEN_AT_LEAST: usize = 64;

/// The stored state of a key that a batch writes: what an update keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// The key's mod revision (the resourceVersion users see).
    pub revision: Revision,
    /// The uid given at creation.
    pub uid: Option<String>,
    /// The creation time.
    pub creation_timestamp: Option<String>,
}

/// The store prefix a document's key sits under (its kind, and namespace).
fn parent_prefix(k: &DocumentKey) -> String {
    match k {
        DocumentKey::Calico(k) => keys::kind_prefix(k.kind, k.namespace.as_deref()),
        DocumentKey::KubernetesNetworkPolicy { namespace, .. } => {
            keys::k8s_network_policy_prefix(Some(namespace))
        }
    }
}

impl Client {
    /// What the store holds now for each of `keys` (in order): its revision,
    /// uid and creation time, for [`BatchWriter::push`]. A batch with many
    /// keys under one prefix (a kind, or a kind in a namespace) reads the
    /// prefix once instead of each key.
    pub fn existing<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k DocumentKey>,
    ) -> Result<Vec<Option<Existing>>, ClientError> {
        // Each key, and the index of its prefix among the distinct ones.
        let mut prefixes: Vec<(String, usize)> = Vec::new();
        let mut prefix_index: HashMap<String, usize> = HashMap::new();
        let mut skeys: Vec<(String, usize)> = Vec::new();
        for k in keys {
            let prefix = parent_prefix(k);
            let i = match prefix_index.get(&prefix) {
                Some(i) => *i,
                None => {
                    prefix_index.insert(prefix.clone(), prefixes.len());
                    prefixes.push((prefix, 0));
                    prefixes.len() - 1
                }
            };
            prefixes[i].1 += 1;
            skeys.push((keys::document_key(k), i));
        }
        drop(prefix_index);
        // The listed prefixes' state, decoded as each is read (only what an
        // update keeps, not the values).
        let mut listed: HashMap<String, Existing> = HashMap::new();
        {
            let wanted: HashSet<&str> = skeys.iter().map(|(k, _)| k.as_str()).collect();
            for (prefix, n) in &prefixes {
                if *n >= LIST_WHEN_AT_LEAST {
                    let (kvs, _) = self.store.list(prefix)?;
                    for kv in kvs.iter().filter(|kv| wanted.contains(kv.key.as_str())) {
                        let e = existing_of(&Self::decode(kv)?, kv.mod_revision);
                        listed.insert(kv.key.clone(), e);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(skeys.len());
        for (skey, i) in &skeys {
            out.push(if prefixes[*i].1 >= LIST_WHEN_AT_LEAST {
                listed.get(skey).cloned()
            } else {
                match self.store.get(skey)? {
                    Some(kv) => Some(existing_of(&Self::decode(&kv)?, kv.mod_revision)),
                    None => None,
                }
            });
        }
        Ok(out)
    }

    /// Writes a batch that has been prepared and checked against `existing`
    /// (from [`Client::existing`], one entry per document), in order, in
    /// transactions within `limits` (see [`BatchWriter`]). Returns how many
    /// were written; on a failure, how many were written before it and the error.
    pub fn write_batch(
        &self,
        op: WriteOp,
        limits: TxnLimits,
        batch: Vec<Document>,
        existing: Vec<Option<Existing>>,
    ) -> Result<usize, (usize, ClientError)> {
        let mut seen = HashSet::new();
        let repeated = batch
            .iter()
            .map(Document::key)
            .filter(|k| !seen.insert(k.clone()))
            .collect();
        let mut w = self.batch_writer(op, limits, repeated);
        for (d, e) in batch.into_iter().zip(existing) {
            w.push(d, e)?;
        }
        w.finish()
    }

    /// A [`BatchWriter`]; `repeated` holds the keys that occur more than
    /// once in the batch (each later one is written over the earlier).
    pub fn batch_writer(
        &self,
        op: WriteOp,
        limits: TxnLimits,
        repeated: HashSet<DocumentKey>,
    ) -> BatchWriter<'_> {
        BatchWriter {
            client: self,
            op,
            limits,
            repeated: repeated.iter().map(keys::document_key).collect(),
            known: HashMap::new(),
            pending: Vec::new(),
            pending_repeated: HashSet::new(),
            bytes: 0,
            written: 0,
            now: crate::time::now_rfc3339(),
        }
    }
}

/// How big one transaction of a batch may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnLimits {
    /// Most documents.
    pub max_ops: usize,
    /// Most bytes of keys and values (a lone larger document goes alone).
    pub max_bytes: usize,
}

impl TxnLimits {
    /// Within etcd's defaults: `--max-txn-ops` 128, `--max-request-bytes`
    /// 1.5 MiB (1 MiB of keys and values leaves room for the compares).
    pub const ETCD: TxnLimits = TxnLimits {
        max_ops: MAX_TXN_OPS,
        max_bytes: MAX_TXN_BYTES,
    };
    /// The whole batch in one transaction (the local store has no limit).
    pub const WHOLE: TxnLimits = TxnLimits {
        max_ops: usize::MAX,
        max_bytes: usize::MAX,
    };
}

/// One document waiting for its transaction: already encoded (with its uid
/// and creation time), so a pending transaction holds bytes, not documents.
struct Pending {
    key: String,
    /// The compare: 0 = absent, -1 = cannot hold (see `push`), else the revision.
    expect: Revision,
    value: Vec<u8>,
    /// The resourceVersion the user gave, for the one-by-one path.
    given: Option<String>,
}

/// Writes a checked batch document by document as it is pushed, in
/// transactions within [`TxnLimits`]. Each transaction is a compare-and-swap
/// on every key it writes (absent, or at the revision read), so it is all or
/// nothing; if one finds a key changed since the read, its documents are
/// written one by one as [`Client::write_prepared`] does (re-reading each).
/// Errors carry how many documents were written before them.
pub struct BatchWriter<'a> {
    client: &'a Client,
    op: WriteOp,
    limits: TxnLimits,
    /// Store keys that occur more than once in the batch.
    repeated: HashSet<String>,
    /// The state the batch's own writes left repeated keys in.
    known: HashMap<String, Existing>,
    pending: Vec<Pending>,
    /// The repeated keys in `pending` (a transaction writes a key once).
    pending_repeated: HashSet<String>,
    bytes: usize,
    written: usize,
    now: String,
}

impl BatchWriter<'_> {
    /// Adds a document; `existing` is what [`Client::existing`] read for it.
    pub fn push(
        &mut self,
        mut d: Document,
        existing: Option<Existing>,
    ) -> Result<(), (usize, ClientError)> {
        let key = keys::document_key(&d.key());
        let repeated = self.repeated.contains(&key);
        if repeated && self.pending_repeated.contains(&key) {
            self.flush()?;
        }
        // A key written earlier in the batch is as that write left it.
        let current = if repeated {
            self.known.get(&key).cloned().or(existing)
        } else {
            existing
        };
        let given = d.metadata_mut().resource_version.take();
        // A compare that cannot hold sends the transaction down the
        // one-by-one path, which gives the precise error.
        let impossible = match (self.op, &current) {
            (WriteOp::Create, Some(_)) | (WriteOp::Replace, None) => true,
            (_, Some(e)) => given
                .as_deref()
                .is_some_and(|g| g != e.revision.to_string()),
            _ => false,
        };
        let expect = match &current {
            _ if impossible => -1,
            Some(e) => e.revision,
            None => 0,
        };
        let m = d.metadata_mut();
        match current {
            Some(e) => {
                m.uid = e.uid;
                m.creation_timestamp = e.creation_timestamp;
            }
            None => {
                m.uid = Some(crate::time::uuid4());
                m.creation_timestamp = Some(self.now.clone());
            }
        }
        let value = Client::encode(&d);
        drop(d);
        let size = key.len() + value.len();
        if !self.pending.is_empty()
            && (self.pending.len() >= self.limits.max_ops
                || self.bytes.saturating_add(size) > self.limits.max_bytes)
        {
            self.flush()?;
        }
        if repeated {
            self.pending_repeated.insert(key.clone());
        }
        self.bytes += size;
        self.pending.push(Pending {
            key,
            expect,
            value,
            given,
        });
        Ok(())
    }

    /// Writes what is pending; returns how many documents were written in all.
    pub fn finish(mut self) -> Result<usize, (usize, ClientError)> {
        self.flush()?;
        Ok(self.written)
    }

    /// One transaction of the pending documents.
    fn flush(&mut self) -> Result<(), (usize, ClientError)> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_repeated.clear();
        self.bytes = 0;
        if pending.is_empty() {
            return Ok(());
        }
        let compares: Vec<Compare> = pending
            .iter()
            .map(|p| Compare::at(p.key.as_str(), p.expect))
            .collect();
        let mut givens = Vec::with_capacity(pending.len());
        let ops: Vec<Op> = pending
            .into_iter()
            .map(|p| {
                givens.push(p.given);
                Op::Put {
                    key: p.key,
                    value: p.value,
                }
            })
            .collect();
        let written = self.written;
        let committed = self
            .client
            .store
            .txn(&compares, &ops)
            .map_err(|e| (written, e.into()))?;
        match committed {
            Some(rev) => {
                for op in &ops {
                    let Op::Put { key, value } = op else { continue };
                    if self.repeated.contains(key) {
                        let kv = KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision: 0,
                            mod_revision: rev,
                        };
                        let d = Client::decode(&kv).map_err(|e| (self.written, e))?;
                        self.known.insert(key.clone(), existing_of(&d, rev));
                    }
                    self.written += 1;
                }
                Ok(())
            }
            None => {
                // Something changed since the read: one by one, as a lone
                // write would, re-reading each key.
                for (op, given) in ops.into_iter().zip(givens) {
                    let Op::Put { key, value } = op else { continue };
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: 0,
                        mod_revision: 0,
                    };
                    let mut d = Client::decode(&kv).map_err(|e| (self.written, e))?;
                    d.metadata_mut().resource_version = given;
                    let mut done = self
                        .client
                        .write_prepared(self.op, vec![d])
                        .map_err(|(_, e)| (self.written, e))?;
                    if let Some(d) = done.pop()
                        && self.repeated.contains(&key)
                    {
                        let rev = d
                            .metadata()
                            .resource_version
                            .as_deref()
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(0);
                        self.known.insert(key, existing_of(&d, rev));
                    }
                    self.written += 1;
                }
                Ok(())
            }
        }
    }
}

fn existing_of(d: &Document, revision: Revision) -> Existing {
    Existing {
        revision,
        uid: d.metadata().uid.clone(),
        creation_timestamp: d.metadata().creation_timestamp.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use calico_api::{Document, Kind, Resource, ResourceKey};

    use super::*;
    use crate::local::LocalStore;

    fn profile(name: &str, label: &str) -> Document {
        let text = format!(
            "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {{name: {name}, labels: {{v: \"{label}\"}}}}\n"
        );
        match calico_api::decode_documents(&text).map(|mut v| v.pop()) {
            Ok(Some(Ok(r))) => Client::prepare(r)
                .map(Document::Calico)
                .unwrap_or_else(|e| panic!("{e}")),
            other => panic!("{other:?}"),
        }
    }

    fn keys_of(batch: &[Document]) -> Vec<DocumentKey> {
        batch.iter().map(Document::key).collect()
    }

    fn store() -> (tempfile::TempDir, Client) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = LocalStore::open(dir.path().join("ds.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, Client::new(Arc::new(s)))
    }

    fn revision(c: &Client) -> Revision {
        c.store()
            .list("/")
            .map(|(_, r)| r)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn get(c: &Client, name: &str) -> Resource {
        c.get(&ResourceKey {
            kind: Kind::Profile,
            namespace: None,
            name: name.into(),
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn batches_go_in_transactions_of_128() {
        let (_dir, c) = store();
        let batch: Vec<Document> = (0..300).map(|i| profile(&format!("p{i}"), "a")).collect();
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(existing.iter().all(Option::is_none));
        let before = revision(&c);
        assert_eq!(
            c.write_batch(WriteOp::Create, TxnLimits::ETCD, batch, existing),
            Ok(300)
        );
        // 128 + 128 + 44: three transactions, three revisions.
        assert_eq!(revision(&c), before + 3);
        // The whole batch in one transaction, as on the local store.
        let batch: Vec<Document> = (300..600).map(|i| profile(&format!("p{i}"), "a")).collect();
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.write_batch(WriteOp::Create, TxnLimits::WHOLE, batch, existing),
            Ok(300)
        );
        assert_eq!(revision(&c), before + 4);
        let first = get(&c, "p7");
        // Applied again: updates keep uid and creation time.
        let batch: Vec<Document> = (0..300).map(|i| profile(&format!("p{i}"), "b")).collect();
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(existing.iter().all(Option::is_some));
        assert_eq!(
            c.write_batch(WriteOp::Apply, TxnLimits::ETCD, batch, existing),
            Ok(300)
        );
        let again = get(&c, "p7");
        assert_eq!(again.metadata().uid, first.metadata().uid);
        assert_eq!(
            again.metadata().creation_timestamp,
            first.metadata().creation_timestamp
        );
        assert_eq!(
            again.metadata().labels.get("v").map(String::as_str),
            Some("b")
        );
    }

    #[test]
    fn a_key_twice_and_a_concurrent_change() {
        let (_dir, c) = store();
        // The same key twice in one apply: the later one wins, in a later transaction.
        let batch = vec![
            profile("alpha", "1"),
            profile("beta", "1"),
            profile("alpha", "2"),
        ];
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.write_batch(WriteOp::Apply, TxnLimits::ETCD, batch, existing),
            Ok(3)
        );
        assert_eq!(
            get(&c, "alpha")
                .metadata()
                .labels
                .get("v")
                .map(String::as_str),
            Some("2")
        );
        // Another writer changes a key between the read and the write: the
        // apply still lands (one by one), a create names what exists.
        let batch = vec![profile("alpha", "3"), profile("gamma", "3")];
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        c.apply(match profile("alpha", "other") {
            Document::Calico(r) => r,
            other => panic!("{other:?}"),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.write_batch(WriteOp::Apply, TxnLimits::ETCD, batch, existing),
            Ok(2)
        );
        assert_eq!(
            get(&c, "alpha")
                .metadata()
                .labels
                .get("v")
                .map(String::as_str),
            Some("3")
        );
        let batch = vec![profile("delta", "1"), profile("eps", "1")];
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        c.create(match profile("eps", "other") {
            Document::Calico(r) => r,
            other => panic!("{other:?}"),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        match c.write_batch(WriteOp::Create, TxnLimits::ETCD, batch, existing) {
            Err((1, ClientError::AlreadyExists(k))) => assert_eq!(k.to_string(), "Profile(eps)"),
            other => panic!("{other:?}"),
        }
    }
}
