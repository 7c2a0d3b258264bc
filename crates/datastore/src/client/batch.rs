//! Writing a big checked batch ([`Client::write_batch`]): the stored state
//! of its keys read in few requests ([`Client::existing`]), then
//! transactions of at most [`MAX_TXN_OPS`] documents and [`MAX_TXN_BYTES`],
//! each a compare-and-swap on every key it writes (all or nothing), within
//! etcd's default limits (128 operations, 1.5 MiB per request).

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
    /// uid and creation time, for [`Client::write_batch`]. A batch with many
    /// keys under one prefix (a kind, or a kind in a namespace) reads the
    /// prefix once instead of each key.
    pub fn existing(&self, keys: &[DocumentKey]) -> Result<Vec<Option<Existing>>, ClientError> {
        let skeys: Vec<String> = keys.iter().map(keys::document_key).collect();
        let mut per_prefix: HashMap<String, usize> = HashMap::new();
        for k in keys {
            *per_prefix.entry(parent_prefix(k)).or_default() += 1;
        }
        let mut listed: HashMap<String, KeyValue> = HashMap::new();
        let wanted: HashSet<&str> = skeys.iter().map(String::as_str).collect();
        for (prefix, n) in &per_prefix {
            if *n >= LIST_WHEN_AT_LEAST {
                let (kvs, _) = self.store.list(prefix)?;
                listed.extend(
                    kvs.into_iter()
                        .filter(|kv| wanted.contains(kv.key.as_str()))
                        .map(|kv| (kv.key.clone(), kv)),
                );
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (k, skey) in keys.iter().zip(&skeys) {
            let kv =
                if per_prefix.get(&parent_prefix(k)).copied().unwrap_or(0) >= LIST_WHEN_AT_LEAST {
                    listed.get(skey).cloned()
                } else {
                    self.store.get(skey)?
                };
            out.push(match kv {
                Some(kv) => {
                    let old = Self::decode(&kv)?;
                    Some(Existing {
                        revision: kv.mod_revision,
                        uid: old.metadata().uid.clone(),
                        creation_timestamp: old.metadata().creation_timestamp.clone(),
                    })
                }
                None => None,
            });
        }
        Ok(out)
    }

    /// Writes a batch that has been prepared and checked against `existing`
    /// (from [`Client::existing`], one entry per document), in order, in
    /// transactions of at most [`MAX_TXN_OPS`] documents and
    /// [`MAX_TXN_BYTES`] (etcd's default limits are 128 operations and 1.5
    /// MiB per request). Each transaction is a compare-and-swap on every key
    /// it writes (absent, or at the revision read), so it is all or nothing;
    /// if one finds a key changed since the read, its documents are written
    /// one by one as [`Client::write_prepared`] does. Returns how many were
    /// written; on a failure, how many were written before it and the error.
    pub fn write_batch(
        &self,
        op: WriteOp,
        batch: Vec<Document>,
        existing: Vec<Option<Existing>>,
    ) -> Result<usize, (usize, ClientError)> {
        let mut known: HashMap<String, Option<Existing>> = HashMap::new();
        let mut written = 0;
        let mut chunk: Vec<(String, Document)> = Vec::new();
        let mut bytes = 0;
        for (d, e) in batch.into_iter().zip(existing) {
            let skey = keys::document_key(&d.key());
            let size = Self::encode(&d).len() + skey.len();
            let repeated = chunk.iter().any(|(k, _)| *k == skey);
            if !chunk.is_empty()
                && (chunk.len() >= MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES || repeated)
            {
                written += self
                    .write_chunk(op, std::mem::take(&mut chunk), &mut known)
                    .map_err(|(n, e)| (written + n, e))?;
                bytes = 0;
            }
            // A key seen earlier in the batch is as that write left it.
            known.entry(skey.clone()).or_insert(e);
            bytes += size;
            chunk.push((skey, d));
        }
        if !chunk.is_empty() {
            written += self
                .write_chunk(op, chunk, &mut known)
                .map_err(|(n, e)| (written + n, e))?;
        }
        Ok(written)
    }

    /// One transaction of [`Client::write_batch`]; `known` holds each key's
    /// state as last read or written, and is updated.
    fn write_chunk(
        &self,
        op: WriteOp,
        chunk: Vec<(String, Document)>,
        known: &mut HashMap<String, Option<Existing>>,
    ) -> Result<usize, (usize, ClientError)> {
        let now = crate::time::now_rfc3339();
        let mut compares = Vec::with_capacity(chunk.len());
        let mut ops = Vec::with_capacity(chunk.len());
        let mut stamps = Vec::with_capacity(chunk.len());
        for (skey, d) in &chunk {
            let current = known.get(skey).cloned().flatten();
            let given = d.metadata().resource_version.as_deref();
            // A compare that cannot hold sends the chunk down the one-by-one
            // path, which gives the precise error (exists, missing, conflict).
            let impossible = match (op, &current) {
                (WriteOp::Create, Some(_)) | (WriteOp::Replace, None) => true,
                (_, Some(e)) => given.is_some_and(|g| g != e.revision.to_string()),
                _ => false,
            };
            compares.push(match &current {
                _ if impossible => Compare::at(skey, -1),
                Some(e) => Compare::at(skey, e.revision),
                None => Compare::absent(skey),
            });
            let stamp = match current {
                Some(e) => (e.uid, e.creation_timestamp),
                None => (Some(crate::time::uuid4()), Some(now.clone())),
            };
            let mut d = d.clone();
            let m = d.metadata_mut();
            m.uid = stamp.0.clone();
            m.creation_timestamp = stamp.1.clone();
            ops.push(Op::Put {
                key: skey.clone(),
                value: Self::encode(&d),
            });
            stamps.push(stamp);
        }
        match self.store.txn(&compares, &ops).map_err(|e| (0, e.into()))? {
            Some(rev) => {
                for ((skey, _), (uid, creation_timestamp)) in chunk.iter().zip(stamps) {
                    known.insert(
                        skey.clone(),
                        Some(Existing {
                            revision: rev,
                            uid,
                            creation_timestamp,
                        }),
                    );
                }
                Ok(chunk.len())
            }
            None => {
                // Something changed since the read: one by one, as a lone
                // write would, re-reading each key.
                let mut n = 0;
                for (skey, d) in chunk {
                    let mut d = d;
                    match self.write_prepared(op, vec![d.clone()]) {
                        Ok(mut w) => {
                            if let Some(w) = w.pop() {
                                d = w;
                            }
                        }
                        Err((_, e)) => return Err((n, e)),
                    }
                    let rev = d
                        .metadata()
                        .resource_version
                        .as_deref()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    let m = d.metadata();
                    known.insert(
                        skey,
                        Some(Existing {
                            revision: rev,
                            uid: m.uid.clone(),
                            creation_timestamp: m.creation_timestamp.clone(),
                        }),
                    );
                    n += 1;
                }
                Ok(n)
            }
        }
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
        assert_eq!(c.write_batch(WriteOp::Create, batch, existing), Ok(300));
        // 128 + 128 + 44: three transactions, three revisions.
        assert_eq!(revision(&c), before + 3);
        let first = get(&c, "p7");
        // Applied again: updates keep uid and creation time.
        let batch: Vec<Document> = (0..300).map(|i| profile(&format!("p{i}"), "b")).collect();
        let existing = c
            .existing(&keys_of(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(existing.iter().all(Option::is_some));
        assert_eq!(c.write_batch(WriteOp::Apply, batch, existing), Ok(300));
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
        assert_eq!(c.write_batch(WriteOp::Apply, batch, existing), Ok(3));
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
        assert_eq!(c.write_batch(WriteOp::Apply, batch, existing), Ok(2));
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
        match c.write_batch(WriteOp::Create, batch, existing) {
            Err((1, ClientError::AlreadyExists(k))) => assert_eq!(k.to_string(), "Profile(eps)"),
            other => panic!("{other:?}"),
        }
    }
}
