//! One conformance suite, run against both backends: the local SQLite store
//! (a real file) and etcd v3 (a real etcd started by the test harness).
//!
//! Each `suite!` instantiation generates the same tests for one backend.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::{Kind, Resource, ResourceKey, decode_documents};
use calico_datastore::client::ResourceEvent;
use calico_datastore::etcd::{EtcdStore, EtcdTls};
use calico_datastore::local::LocalStore;
use calico_datastore::{Client, ClientError, Compare, Event, EventKind, Op, Store, StoreError};
use calico_testutil::EtcdServer;

#[path = "conformance/documents.rs"]
mod documents;

const WAIT: Duration = Duration::from_secs(10);

/// A backend under test: the store and whatever keeps it alive.
struct Fixture {
    store: Arc<dyn Store>,
    _keep: Box<dyn std::any::Any>,
    /// Compacts history up to the current revision.
    compact: Box<dyn Fn(i64)>,
}

fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("datastore.db");
    let store =
        Arc::new(LocalStore::open_with_history(&path, 20).unwrap_or_else(|e| panic!("{e}")));
    let s2 = store.clone();
    Fixture {
        store,
        _keep: Box::new(dir),
        // The local store compacts by itself: push enough revisions past the window.
        compact: Box::new(move |_| {
            for i in 0..40 {
                s2.txn(
                    &[],
                    &[Op::Put {
                        key: "/compact/filler".into(),
                        value: vec![i],
                    }],
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }),
    }
}

fn etcd() -> Fixture {
    let server = EtcdServer::start();
    let store = Arc::new(
        EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let server = Arc::new(server);
    let s2 = server.clone();
    Fixture {
        store,
        _keep: Box::new(server),
        compact: Box::new(move |rev| {
            s2.etcdctl(&["compact", &rev.to_string()])
                .unwrap_or_else(|e| panic!("{e}"));
        }),
    }
}

fn put(s: &dyn Store, key: &str, value: &str) -> i64 {
    s.txn(
        &[],
        &[Op::Put {
            key: key.into(),
            value: value.into(),
        }],
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|| panic!("unconditional put failed"))
}

fn next_event(w: &mut Box<dyn calico_datastore::Watch>) -> Event {
    w.next(WAIT)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no event within {WAIT:?}"))
}

fn resource(yaml: &str) -> Resource {
    decode_documents(yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn pool(name: &str, cidr: &str) -> Resource {
    resource(&format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: {cidr}}}\n"
    ))
}

fn netset(ns: &str, name: &str) -> Resource {
    resource(&format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{nets: [10.0.0.0/8]}}\n"
    ))
}

// ---- key-value semantics -------------------------------------------------

fn kv_create_get_revisions(f: Fixture) {
    let s = &*f.store;
    let r1 = put(s, "/t/a", "1");
    let kv = s
        .get("/t/a")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (b"1".as_slice(), r1, r1)
    );
    let r2 = put(s, "/t/a", "2");
    assert!(r2 > r1, "revision must grow: {r1} then {r2}");
    let kv = s
        .get("/t/a")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!((kv.create_revision, kv.mod_revision), (r1, r2));
    assert_eq!(s.get("/t/none").unwrap_or_else(|e| panic!("{e}")), None);
}

fn kv_compare_and_swap(f: Fixture) {
    let s = &*f.store;
    let ok = s.txn(
        &[Compare::absent("/t/k")],
        &[Op::Put {
            key: "/t/k".into(),
            value: b"v1".to_vec(),
        }],
    );
    let r1 = ok
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("create of an absent key failed"));
    // Create again: refused, nothing changes.
    let again = s.txn(
        &[Compare::absent("/t/k")],
        &[Op::Put {
            key: "/t/k".into(),
            value: b"v2".to_vec(),
        }],
    );
    assert_eq!(again, Ok(None));
    // Stale revision: refused.
    let r2 = put(s, "/t/k", "v3");
    let stale = s.txn(
        &[Compare::at("/t/k", r1)],
        &[Op::Put {
            key: "/t/k".into(),
            value: b"v4".to_vec(),
        }],
    );
    assert_eq!(stale, Ok(None));
    assert_eq!(
        s.get("/t/k").ok().flatten().map(|kv| kv.value),
        Some(b"v3".to_vec())
    );
    // Delete with stale revision refused; with current revision applied.
    assert_eq!(
        s.txn(
            &[Compare::at("/t/k", r1)],
            &[Op::Delete { key: "/t/k".into() }]
        ),
        Ok(None)
    );
    assert!(
        s.txn(
            &[Compare::at("/t/k", r2)],
            &[Op::Delete { key: "/t/k".into() }]
        )
        .is_ok_and(|r| r.is_some())
    );
    assert_eq!(s.get("/t/k").ok().flatten(), None);
}

fn kv_transactions_are_atomic(f: Fixture) {
    let s = &*f.store;
    put(s, "/t/x", "x");
    let before = s.list("/t/").unwrap_or_else(|e| panic!("{e}"));
    // Second compare fails: none of the three ops may apply.
    let r = s.txn(
        &[Compare::absent("/t/y"), Compare::absent("/t/x")],
        &[
            Op::Put {
                key: "/t/y".into(),
                value: b"y".to_vec(),
            },
            Op::Put {
                key: "/t/z".into(),
                value: b"z".to_vec(),
            },
            Op::Delete { key: "/t/x".into() },
        ],
    );
    assert_eq!(r, Ok(None));
    assert_eq!(s.list("/t/").unwrap_or_else(|e| panic!("{e}")), before);
    // All compares hold: all ops apply at one revision.
    let rev = s
        .txn(
            &[Compare::absent("/t/y")],
            &[
                Op::Put {
                    key: "/t/y".into(),
                    value: b"y".to_vec(),
                },
                Op::Put {
                    key: "/t/z".into(),
                    value: b"z".to_vec(),
                },
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("txn failed"));
    let (kvs, list_rev) = s.list("/t/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list_rev, rev);
    let revs: Vec<i64> = kvs
        .iter()
        .filter(|k| k.key != "/t/x")
        .map(|k| k.mod_revision)
        .collect();
    assert_eq!(revs, vec![rev, rev]);
}

/// A list bigger than etcd's 4 MiB gRPC answer (1,200 values of 5 KB)
/// comes back whole, in order, from one snapshot.
fn kv_list_larger_than_one_answer(f: Fixture) {
    let s = &*f.store;
    let value = "v".repeat(5000);
    for i in 0..1200 {
        put(s, &format!("/big/{i:05}"), &value);
    }
    put(s, "/bigger", "outside");
    let (kvs, rev) = s.list("/big/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kvs.len(), 1200);
    assert!(
        kvs.iter()
            .enumerate()
            .all(|(i, kv)| kv.key == format!("/big/{i:05}")
                && kv.value.len() == 5000
                && kv.mod_revision <= rev)
    );
}

fn kv_list_by_prefix(f: Fixture) {
    let s = &*f.store;
    for k in ["/a/b/2", "/a/b/1", "/a/bc", "/a/b", "/z"] {
        put(s, k, k);
    }
    let (kvs, _) = s.list("/a/b/").unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, vec!["/a/b/1", "/a/b/2"]);
    let (kvs, _) = s.list("/nothing/").unwrap_or_else(|e| panic!("{e}"));
    assert!(kvs.is_empty());
}

fn watch_from_revision_in_order(f: Fixture) {
    let s = &*f.store;
    let r0 = put(s, "/w/a", "0");
    put(s, "/other/x", "ignored");
    let r1 = put(s, "/w/a", "1");
    let r2 = s
        .txn(&[], &[Op::Delete { key: "/w/a".into() }])
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("delete"));
    let mut w = s.watch("/w/", r0).unwrap_or_else(|e| panic!("{e}"));
    let evs: Vec<Event> = (0..3).map(|_| next_event(&mut w)).collect();
    assert_eq!(
        evs.iter()
            .map(|e| (e.kind, e.mod_revision))
            .collect::<Vec<_>>(),
        vec![
            (EventKind::Put, r0),
            (EventKind::Put, r1),
            (EventKind::Delete, r2)
        ]
    );
    assert_eq!(evs[1].value, b"1".to_vec());
    // Live events arrive too, and only under the prefix.
    put(s, "/other/y", "ignored");
    let r3 = put(s, "/w/b", "live");
    let e = next_event(&mut w);
    assert_eq!((e.key.as_str(), e.mod_revision), ("/w/b", r3));
    assert_eq!(
        w.next(Duration::from_millis(300))
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
}

fn watch_resume_loses_and_repeats_nothing(f: Fixture) {
    let s = &*f.store;
    let (_, start) = s.list("/r/").unwrap_or_else(|e| panic!("{e}"));
    let mut w = s.watch("/r/", start + 1).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..10 {
        put(s, &format!("/r/{i}"), "v");
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event(&mut w));
    }
    drop(w); // the consumer goes away mid-stream
    for i in 10..15 {
        put(s, &format!("/r/{i}"), "v");
    }
    let resume_from = seen.last().map(|e| e.mod_revision + 1).unwrap_or(start + 1);
    let mut w = s
        .watch("/r/", resume_from)
        .unwrap_or_else(|e| panic!("{e}"));
    while seen.len() < 15 {
        seen.push(next_event(&mut w));
    }
    assert_eq!(
        w.next(Duration::from_millis(300))
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    let keys: Vec<String> = seen.iter().map(|e| e.key.clone()).collect();
    let want: Vec<String> = (0..15).map(|i| format!("/r/{i}")).collect();
    assert_eq!(keys, want);
}

fn watch_compacted_history_is_reported(f: Fixture) {
    let s = &*f.store;
    let first = put(s, "/c/a", "1");
    for i in 0..5 {
        put(s, "/c/a", &i.to_string());
    }
    let (_, rev) = s.list("/c/").unwrap_or_else(|e| panic!("{e}"));
    (f.compact)(rev);
    let mut w = s.watch("/c/", first).unwrap_or_else(|e| panic!("{e}"));
    match w.next(WAIT) {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, first),
        other => panic!("expected a compacted error, got {other:?}"),
    }
}

/// Adds one to the decimal counter at `key` by compare-and-swap, retrying on conflict.
fn increment(s: &dyn Store, key: &str) {
    loop {
        let cur = s.get(key).unwrap_or_else(|e| panic!("{e}"));
        let (n, rev) = cur.map_or((0, 0), |kv| {
            let n = String::from_utf8_lossy(&kv.value)
                .parse::<u64>()
                .unwrap_or(0);
            (n, kv.mod_revision)
        });
        let op = Op::Put {
            key: key.into(),
            value: (n + 1).to_string().into_bytes(),
        };
        if s.txn(&[Compare::at(key, rev)], &[op])
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some()
        {
            return;
        }
    }
}

fn concurrent_cas_never_loses_an_update(f: Fixture) {
    let store = f.store.clone();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    increment(&*s, "/cas/counter");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap_or_else(|_| panic!("worker panicked"));
    }
    let v = store.get("/cas/counter").ok().flatten().map(|kv| kv.value);
    assert_eq!(v, Some(b"100".to_vec()));
}

// ---- typed resources -----------------------------------------------------

fn resources_create_get_update_delete(f: Fixture) {
    let c = Client::new(f.store.clone());
    let created = c
        .create(pool("p1", "10.1.0.0/16"))
        .unwrap_or_else(|e| panic!("{e}"));
    let m = created.metadata().clone();
    assert!(m.uid.is_some() && m.creation_timestamp.is_some() && m.resource_version.is_some());
    let key = created.key();
    assert_eq!(c.get(&key).unwrap_or_else(|e| panic!("{e}")), created);
    assert!(matches!(
        c.create(pool("p1", "10.1.0.0/16")),
        Err(ClientError::AlreadyExists(_))
    ));

    // Update with the current resourceVersion works and keeps uid/creationTimestamp.
    let mut changed = created.clone();
    if let Resource::IPPool(p) = &mut changed {
        p.spec.nat_outgoing = true;
    }
    let updated = c.update(changed.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(updated.metadata().uid, m.uid);
    assert_eq!(updated.metadata().creation_timestamp, m.creation_timestamp);
    assert_ne!(updated.metadata().resource_version, m.resource_version);
    // The old resourceVersion is now stale: update and delete are refused.
    match c.update(changed) {
        Err(ClientError::Conflict { given, .. }) => {
            assert_eq!(Some(given), m.resource_version.clone())
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        c.delete(&key, m.resource_version.as_deref()),
        Err(ClientError::Conflict { .. })
    ));
    let deleted = c
        .delete(&key, updated.metadata().resource_version.as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(deleted.key(), key);
    assert!(matches!(c.get(&key), Err(ClientError::NotFound(_))));
    assert!(matches!(
        c.delete(&key, None),
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        c.update(pool("p1", "10.1.0.0/16")),
        Err(ClientError::NotFound(_))
    ));
}

/// Many updates at the resourceVersions read, in transactions of
/// [`calico_datastore::client::BATCH`]: all written, except the ones changed
/// meanwhile (a conflict each), whose transaction's others still land; a
/// resource without a resourceVersion and an invalid one are handled alone.
fn resources_update_batch(f: Fixture) {
    let c = Client::new(f.store.clone());
    for i in 0..250 {
        c.create(netset("ns", &format!("s{i:03}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut listed, _) = c
        .list(Kind::NetworkSet, Some("ns"))
        .unwrap_or_else(|e| panic!("{e}"));
    // Two are changed by someone else after the read.
    for i in [7usize, 50] {
        let mut other = listed[i].clone();
        other
            .metadata_mut()
            .labels
            .insert("by".into(), "other".into());
        c.update(other).unwrap_or_else(|e| panic!("{e}"));
    }
    for r in &mut listed {
        r.metadata_mut().labels.insert("by".into(), "batch".into());
    }
    listed[100].metadata_mut().resource_version = None;
    listed[200].metadata_mut().name = "Not Valid".into();
    let rv_before = c
        .list(Kind::NetworkSet, Some("ns"))
        .map(|l| l.1)
        .unwrap_or(0);
    let results = c.update_batch(listed);
    assert_eq!(results.len(), 250);
    for (i, r) in results.iter().enumerate() {
        match i {
            7 | 50 => assert!(matches!(r, Err(ClientError::Conflict { .. })), "{i}: {r:?}"),
            200 => assert!(r.is_err(), "{i}: {r:?}"),
            _ => {
                let r = r.as_ref().unwrap_or_else(|e| panic!("{i}: {e}"));
                assert!(r.metadata().resource_version.is_some());
                assert!(r.metadata().uid.is_some());
            }
        }
    }
    let (after, rv_after) = c
        .list(Kind::NetworkSet, Some("ns"))
        .unwrap_or_else(|e| panic!("{e}"));
    let by = |i: usize| after[i].metadata().labels.get("by").cloned();
    assert_eq!(by(7).as_deref(), Some("other"));
    assert_eq!(by(50).as_deref(), Some("other"));
    assert_eq!(by(200), None);
    assert_eq!(by(100).as_deref(), Some("batch"));
    assert_eq!(by(0).as_deref(), Some("batch"));
    assert_eq!(by(249).as_deref(), Some("batch"));
    // Far fewer commits than resources: one per transaction (the second
    // and third), plus the ones written alone (the first transaction's, for
    // its two conflicts, and the one without a resourceVersion).
    assert!(rv_after - rv_before <= 101, "{rv_before} -> {rv_after}");
}

fn resources_apply_and_list_by_namespace(f: Fixture) {
    let c = Client::new(f.store.clone());
    for (ns, n) in [("a", "s1"), ("a", "s2"), ("b", "s1")] {
        c.apply(netset(ns, n)).unwrap_or_else(|e| panic!("{e}"));
    }
    c.apply(netset("a", "s1"))
        .unwrap_or_else(|e| panic!("apply of an existing resource: {e}"));
    let names = |ns: Option<&str>| -> Vec<String> {
        let (list, _) = c
            .list(Kind::NetworkSet, ns)
            .unwrap_or_else(|e| panic!("{e}"));
        list.iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r.metadata().namespace.clone().unwrap_or_default(),
                    r.metadata().name
                )
            })
            .collect()
    };
    assert_eq!(names(Some("a")), vec!["a/s1", "a/s2"]);
    assert_eq!(names(Some("b")), vec!["b/s1"]);
    assert_eq!(names(None), vec!["a/s1", "a/s2", "b/s1"]);
    assert!(names(Some("c")).is_empty());
    let (gl, _) = c
        .list(Kind::GlobalNetworkSet, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gl.is_empty());
}

fn resources_cluster_rules(f: Fixture) {
    let c = Client::new(f.store.clone());
    c.create(pool("p1", "10.1.0.0/16"))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = c
        .create(pool("p2", "10.1.128.0/24"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("overlaps with IPPool(p1)"), "{e}");
    let e = c
        .apply(pool("p1", "10.2.0.0/16"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("cannot be changed"), "{e}");
    let e = c
        .create(pool("Bad", "10.9.0.0/16"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("metadata.name"), "{e}");
    let (list, _) = c.list(Kind::IPPool, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list.len(), 1, "refused writes must leave nothing behind");
}

fn resources_watch(f: Fixture) {
    let c = Client::new(f.store.clone());
    let (_, rev) = c.list(Kind::IPPool, None).unwrap_or_else(|e| panic!("{e}"));
    let mut w = c
        .watch(Kind::IPPool, None, rev + 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let created = c
        .create(pool("wp", "10.7.0.0/16"))
        .unwrap_or_else(|e| panic!("{e}"));
    c.delete(&created.key(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    match w.next(WAIT).unwrap_or_else(|e| panic!("{e}")) {
        Some(ResourceEvent::Upserted(r)) => assert_eq!(r, created),
        other => panic!("expected the created pool, got {other:?}"),
    }
    match w.next(WAIT).unwrap_or_else(|e| panic!("{e}")) {
        Some(ResourceEvent::Deleted(k, _)) => {
            assert_eq!(
                k,
                ResourceKey {
                    kind: Kind::IPPool,
                    namespace: None,
                    name: "wp".into()
                }
            )
        }
        other => panic!("expected the delete, got {other:?}"),
    }
    let mut nw = c
        .watch(Kind::NetworkSet, Some("a"), 1)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = c
        .create(netset("a", "n1"))
        .unwrap_or_else(|e| panic!("{e}"));
    c.create(netset("b", "n1"))
        .unwrap_or_else(|e| panic!("{e}"));
    c.delete(&s.key(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        nw.next(WAIT),
        Ok(Some(ResourceEvent::Upserted(_)))
    ));
    match nw.next(WAIT).unwrap_or_else(|e| panic!("{e}")) {
        Some(ResourceEvent::Deleted(k, _)) => assert_eq!(k, s.key()),
        other => panic!("expected the delete in namespace a, got {other:?}"),
    }
}

/// `list_paged` hands every key under the prefix once, in key order, in
/// more than one page of at most 2,000, values intact, at the revision `list`
/// gives; keys beside the prefix (one sorting right after it) stay out;
/// writes made while the pages are read are not seen (one revision).
fn kv_list_paged(f: Fixture) {
    let s = &f.store;
    let value = |i: usize| format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes();
    let mut ops: Vec<Op> = (0..4321)
        .map(|i| Op::Put {
            key: format!("/paged/k{i:05}"),
            value: value(i),
        })
        .collect();
    // "/paged0" sorts right after every "/paged/..." key; "/page" before.
    for key in ["/paged0", "/page", "/paged", "/pagee/x", "/a"] {
        ops.push(Op::Put {
            key: key.into(),
            value: b"outside".to_vec(),
        });
    }
    // Shuffled writes: the order handed out is the store's, not insertion's.
    ops.reverse();
    for c in ops.chunks(100) {
        s.txn(&[], c).unwrap_or_else(|e| panic!("{e}"));
    }
    let (whole, list_rev) = s.list("/paged/").unwrap_or_else(|e| panic!("{e}"));
    let mut pages: Vec<Vec<calico_datastore::KeyValue>> = Vec::new();
    let rev = s
        .list_paged("/paged/", &mut |p| pages.push(p))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rev, list_rev,
        "list_paged and list disagree on the revision"
    );
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert!(sizes.len() > 1, "one page for 4,321 keys: {sizes:?}");
    assert!(sizes.iter().all(|n| *n <= 2000), "{sizes:?}");
    let got: Vec<(String, Vec<u8>)> = pages
        .iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    let want: Vec<(String, Vec<u8>)> = (0..4321)
        .map(|i| (format!("/paged/k{i:05}"), value(i)))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "keys or values differ from what was written");
    assert!(pages.iter().flatten().all(|kv| kv.mod_revision <= rev));
    assert_eq!(
        whole.iter().map(|kv| &kv.key).collect::<Vec<_>>(),
        got.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );

    // Nothing under a prefix: zero pages or one empty page, and a revision.
    let mut empty_pages = Vec::new();
    let r = s
        .list_paged("/nothing/", &mut |p| empty_pages.push(p.len()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        empty_pages.is_empty() || empty_pages == [0],
        "{empty_pages:?}"
    );
    assert_eq!(r, rev, "no write happened: the same revision");

    // Writes made once the first page has arrived are not seen: a new key,
    // a changed value and a deleted key, all in pages not yet handed out.
    // The writer runs on its own thread; the caller waits for it up to a
    // second (the local store holds its lock while it pages, so there the
    // write lands only after the listing).
    let mut writer = None;
    let mut pages = Vec::new();
    let during = s
        .list_paged("/paged/", &mut |p| {
            pages.push(p);
            if writer.is_none() {
                let s2 = f.store.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                writer = Some(std::thread::spawn(move || {
                    let r = s2.txn(
                        &[],
                        &[
                            Op::Put {
                                key: "/paged/k04320a".into(),
                                value: b"new".to_vec(),
                            },
                            Op::Put {
                                key: "/paged/k04300".into(),
                                value: b"changed".to_vec(),
                            },
                            Op::Delete {
                                key: "/paged/k04200".into(),
                            },
                        ],
                    );
                    let _ = tx.send(());
                    r
                }));
                let _ = rx.recv_timeout(Duration::from_secs(1));
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let wrote = writer
        .unwrap_or_else(|| panic!("no page"))
        .join()
        .unwrap_or_else(|_| panic!("writer panicked"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("unconditional write failed"));
    assert_eq!(during, rev, "the listing moved to a later revision");
    assert!(wrote > during);
    let got_during: Vec<(String, Vec<u8>)> = pages
        .iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert!(got_during == want, "a write made while paging was seen");
    // And the next listing sees them.
    let mut after = Vec::new();
    let r2 = s
        .list_paged("/paged/", &mut |p| after.extend(p))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r2, wrote);
    assert_eq!(after.len(), 4321);
    assert!(after.iter().any(|kv| kv.key == "/paged/k04320a"));
    assert!(after.iter().all(|kv| kv.key != "/paged/k04200"));
}

/// Pages whose values add up past what one answer may carry (300 values
/// of 300 KB: 90 MB) still list whole, in order.
fn kv_list_paged_large_values(f: Fixture) {
    let s = &f.store;
    let value = |i: usize| {
        let mut v = format!("{i:05}").into_bytes();
        v.resize(300 * 1024, b'v');
        v
    };
    for i in 0..300 {
        s.txn(
            &[],
            &[Op::Put {
                key: format!("/big/k{i:05}"),
                value: value(i),
            }],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut got = Vec::new();
    s.list_paged("/big/", &mut |p| {
        got.extend(
            p.into_iter()
                .map(|kv| (kv.key, kv.value.len(), kv.value[..5].to_vec())),
        )
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 300);
    for (i, (k, len, head)) in got.iter().enumerate() {
        assert_eq!(k, &format!("/big/k{i:05}"));
        assert_eq!(*len, 300 * 1024);
        assert_eq!(head, &format!("{i:05}").into_bytes());
    }
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn kv_create_get_revisions() {
                super::kv_create_get_revisions(super::$backend());
            }
            #[test]
            fn kv_compare_and_swap() {
                super::kv_compare_and_swap(super::$backend());
            }
            #[test]
            fn kv_transactions_are_atomic() {
                super::kv_transactions_are_atomic(super::$backend());
            }
            #[test]
            fn kv_list_by_prefix() {
                super::kv_list_by_prefix(super::$backend());
            }
            #[test]
            fn kv_list_larger_than_one_answer() {
                super::kv_list_larger_than_one_answer(super::$backend());
            }
            #[test]
            fn kv_list_paged() {
                super::kv_list_paged(super::$backend());
            }
            #[test]
            fn kv_list_paged_large_values() {
                super::kv_list_paged_large_values(super::$backend());
            }
            #[test]
            fn watch_from_revision_in_order() {
                super::watch_from_revision_in_order(super::$backend());
            }
            #[test]
            fn watch_resume_loses_and_repeats_nothing() {
                super::watch_resume_loses_and_repeats_nothing(super::$backend());
            }
            #[test]
            fn watch_compacted_history_is_reported() {
                super::watch_compacted_history_is_reported(super::$backend());
            }
            #[test]
            fn concurrent_cas_never_loses_an_update() {
                super::concurrent_cas_never_loses_an_update(super::$backend());
            }
            #[test]
            fn resources_create_get_update_delete() {
                super::resources_create_get_update_delete(super::$backend());
            }
            #[test]
            fn resources_update_batch() {
                super::resources_update_batch(super::$backend());
            }
            #[test]
            fn resources_apply_and_list_by_namespace() {
                super::resources_apply_and_list_by_namespace(super::$backend());
            }
            #[test]
            fn resources_cluster_rules() {
                super::resources_cluster_rules(super::$backend());
            }
            #[test]
            fn resources_watch() {
                super::resources_watch(super::$backend());
            }
            #[test]
            fn tiers_and_policy_rules() {
                super::documents::tiers_and_policy_rules(super::$backend());
            }
            #[test]
            fn kubernetes_network_policies() {
                super::documents::kubernetes_network_policies(super::$backend());
            }
        }
    };
}

suite!(local);
suite!(etcd);

// ---- backend-specific ------------------------------------------------------

/// The etcd watch survives a cut connection: events written while it was cut
/// arrive after it reconnects, none lost and none repeated.
#[test]
fn etcd_watch_reconnects_after_dropped_connection() {
    let server = EtcdServer::start();
    let proxy = calico_testutil::TcpProxy::start(server.port);
    let direct = EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let via_proxy = EtcdStore::connect(&[proxy.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut w = via_proxy.watch("/d/", 1).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..3 {
        put(&direct, &format!("/d/{i}"), "before");
    }
    let mut seen: Vec<String> = (0..3).map(|_| next_event(&mut w).key).collect();
    proxy.cut();
    for i in 3..8 {
        put(&direct, &format!("/d/{i}"), "while cut");
    }
    std::thread::sleep(Duration::from_millis(500));
    proxy.resume();
    for i in 8..10 {
        put(&direct, &format!("/d/{i}"), "after");
    }
    while seen.len() < 10 {
        match w.next(Duration::from_secs(20)) {
            Ok(Some(e)) => seen.push(e.key),
            Ok(None) => panic!("watch did not resume; saw {seen:?}"),
            Err(StoreError::Unavailable { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        w.next(Duration::from_millis(500)).ok().flatten(),
        None,
        "an event was repeated"
    );
    let want: Vec<String> = (0..10).map(|i| format!("/d/{i}")).collect();
    assert_eq!(seen, want);
}

/// A transaction whose answer is lost after etcd committed it, then
/// retried, reports the commit rather than a conflict (which would make
/// the caller do the work twice: a second address on one IPAM handle).
#[test]
fn etcd_txn_retried_after_a_lost_answer_is_not_a_false_conflict() {
    let server = EtcdServer::start();
    let proxy = Arc::new(calico_testutil::TcpProxy::start(server.port));
    let direct = EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let via_proxy = EtcdStore::connect(&[proxy.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let gone = put(&direct, "/i/gone", "x");
    // The connection is up (HTTP/2 set up) before replies are dropped.
    assert_eq!(
        via_proxy.get("/i/k").unwrap_or_else(|e| panic!("{e}")),
        None
    );
    proxy.mute_replies();
    // Once etcd has the write, the connection is cut and replies flow
    // again: the client's next attempt gets an answer.
    let cutter = {
        let (proxy, endpoint) = (proxy.clone(), server.endpoint());
        std::thread::spawn(move || {
            let s = EtcdStore::connect(&[endpoint], &EtcdTls::default(), None)
                .unwrap_or_else(|e| panic!("{e}"));
            let deadline = Instant::now() + Duration::from_secs(20);
            while s.get("/i/k").ok().flatten().is_none() {
                assert!(Instant::now() < deadline, "the write never reached etcd");
                std::thread::sleep(Duration::from_millis(20));
            }
            proxy.cut();
            proxy.resume();
        })
    };
    let r = via_proxy.txn(
        &[Compare::absent("/i/k"), Compare::at("/i/gone", gone)],
        &[
            Op::Put {
                key: "/i/k".into(),
                value: b"mine".to_vec(),
            },
            Op::Put {
                key: "/i/k2".into(),
                value: b"mine too".to_vec(),
            },
            Op::Delete {
                key: "/i/gone".into(),
            },
        ],
    );
    cutter
        .join()
        .unwrap_or_else(|_| panic!("the cutting thread failed"));
    let committed = direct.get("/i/k").unwrap().unwrap().mod_revision;
    assert_eq!(
        r.unwrap_or_else(|e| panic!("{e}")),
        Some(committed),
        "the committed first attempt must be reported as committed"
    );
    assert_eq!(direct.get("/i/k2").unwrap().unwrap().value, b"mine too");
    assert_eq!(direct.get("/i/gone").unwrap(), None);
}

/// An unreachable etcd is a clear, bounded error naming the endpoint.
#[test]
fn etcd_unreachable_is_a_bounded_clear_error() {
    let port = calico_testutil::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    let r = EtcdStore::connect(std::slice::from_ref(&endpoint), &EtcdTls::default(), None);
    let elapsed = t.elapsed();
    match r {
        Err(e @ StoreError::Unavailable { .. }) => {
            assert!(e.to_string().contains(&endpoint), "{e}")
        }
        Err(e) => panic!("expected unavailable, got {e}"),
        Ok(s) => {
            // Some client versions connect lazily: the first request must then fail.
            let e = s.get("/x").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(&endpoint) && e.contains("unreachable"), "{e}");
        }
    }
    assert!(
        elapsed < Duration::from_secs(60),
        "connect took {elapsed:?}"
    );
}

/// etcd restarted under a live watch: the watch carries on.
#[test]
fn etcd_watch_survives_server_restart() {
    let mut server = EtcdServer::start();
    let store = EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut w = store.watch("/s/", 1).unwrap_or_else(|e| panic!("{e}"));
    put(&store, "/s/1", "a");
    assert_eq!(next_event(&mut w).key, "/s/1");
    server.restart();
    put(&store, "/s/2", "b");
    let mut keys = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys.is_empty() && Instant::now() < deadline {
        if let Ok(Some(e)) = w.next(Duration::from_secs(1)) {
            assert!(keys.insert(e.key.clone()), "repeated {}", e.key);
        }
    }
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        vec!["/s/2".to_string()]
    );
    assert_eq!(
        w.next(Duration::from_millis(500)).ok().flatten(),
        None,
        "an event was repeated"
    );
}

/// Many processes share one local store file: concurrent compare-and-swap
/// increments from 4 processes never lose an update.
#[test]
fn local_store_is_safe_across_processes() {
    if let Ok(path) = std::env::var("CALICO_TEST_CHILD_DB") {
        // Child mode: do the increments and exit.
        let s = LocalStore::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..50 {
            increment(&s, "/proc/counter");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("shared.db");
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "local_store_is_safe_across_processes",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CALICO_TEST_CHILD_DB", &db)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().is_ok_and(|s| s.success()),
            "a child process failed"
        );
    }
    let s = LocalStore::open(&db).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.get("/proc/counter").ok().flatten().map(|kv| kv.value),
        Some(b"200".to_vec())
    );
    let (_, rev) = s.list("/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rev, 200, "one revision per committed increment");
}

fn wal_size(db: &std::path::Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// The WAL stays short whoever writes, because every process's first
/// connection re-reads it: one-shot openers (a plugin per pod) truncate it
/// past its limit, a long-lived one (calico-node) checkpoints as it goes and
/// then rewrites it in place; mixed, as on a node, it stays short as well.
#[test]
fn local_store_wal_stays_short() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("wal.db");
    let block = "x".repeat(3000);
    let frame = 4096 + 24;
    // One-shot: a fresh connection per write, as a plugin process.
    let mut most = 0;
    for i in 0..150 {
        let s = LocalStore::open(&db).unwrap_or_else(|e| panic!("{e}"));
        put(&s, &format!("/oneshot/{}", i % 7), &block);
        drop(s);
        most = most.max(wal_size(&db));
    }
    assert!(most <= 80 * frame, "one-shot WAL grew to {most} bytes");
    // Long-lived: never truncated, never past its checkpoint interval (plus
    // one commit), while one-shot writers come and go beside it.
    let daemon = LocalStore::open_long_lived(&db).unwrap_or_else(|e| panic!("{e}"));
    let mut most = 0;
    for i in 0..300 {
        put(&daemon, &format!("/daemon/{}", i % 7), &block);
        if i % 10 == 0 {
            let s = LocalStore::open(&db).unwrap_or_else(|e| panic!("{e}"));
            put(&s, &format!("/oneshot/{}", i % 7), &block);
        }
        most = most.max(wal_size(&db));
    }
    assert!(
        most <= 48 * frame,
        "long-lived WAL grew to {most} bytes: not checkpointed as it goes"
    );
    // Everything written is there.
    let (kvs, _) = daemon.list("/").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kvs.len(), 14);
}

/// A local store path that cannot be created is a clear error, not a panic.
#[test]
fn local_store_bad_path_is_a_clear_error() {
    let e = LocalStore::open("/proc/calico-rs-cannot-exist/datastore.db")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("/proc/calico-rs-cannot-exist") && e.contains("unreachable"),
        "{e}"
    );
}

/// etcd over TLS with client certificates, configured the way users do
/// (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE).
#[test]
fn etcd_over_tls_with_client_certificates() {
    let (server, client) = EtcdServer::start_tls();
    let env = [
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", server.endpoint()),
        ("ETCD_CA_CERT_FILE", client.ca.display().to_string()),
        ("ETCD_CERT_FILE", client.cert.display().to_string()),
        ("ETCD_KEY_FILE", client.key.display().to_string()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let cfg = calico_datastore::config::Settings::from_lookup(lookup)
        .resolve()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = cfg.connect().unwrap_or_else(|e| panic!("{e}"));
    let c = Client::new(store);
    c.create(pool("tls-pool", "10.20.0.0/16"))
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = server
        .etcdctl(&["get", "--prefix", "--keys-only", "/calico/"])
        .unwrap_or_default();
    assert!(
        keys.contains("/calico/resources/v3/projectcalico.org/ippools/tls-pool"),
        "{keys}"
    );
    // Without a client certificate the server refuses us: a clear, bounded error.
    let no_cert = EtcdTls {
        ca_cert_file: Some(client.ca.display().to_string()),
        ..EtcdTls::default()
    };
    let t = Instant::now();
    let r =
        EtcdStore::connect(&[server.endpoint()], &no_cert, None).and_then(|s| s.get("/calico/x"));
    assert!(r.is_err(), "etcd accepted a client without a certificate");
    assert!(t.elapsed() < Duration::from_secs(60));
    // A missing key file is named in the error.
    let bad = EtcdTls {
        key_file: Some("/nonexistent/key.pem".into()),
        ..EtcdTls::default()
    };
    let e = EtcdStore::connect(
        &[server.endpoint()],
        &EtcdTls {
            cert_file: client.cert.to_str().map(String::from),
            ..bad
        },
        None,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("/nonexistent/key.pem"), "{e}");
}
