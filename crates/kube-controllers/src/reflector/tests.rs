use super::*;
use proptest::prelude::*;
use serde_json::json;

fn k(n: &str) -> Key {
    ("ns".into(), n.into())
}

#[test]
fn paged_list_then_watch_then_gone() {
    let mut r = Reflector::new();
    assert_eq!(
        r.start(),
        Action::List {
            continue_token: None
        }
    );
    let (c, a) = r.step(Event::Page {
        items: vec![(k("a"), json!(1))],
        resource_version: "10".into(),
        next: Some("tok".into()),
    });
    assert!(c.is_empty(), "half a list shown");
    assert_eq!(
        a,
        Some(Action::List {
            continue_token: Some("tok".into())
        })
    );
    assert!(r.cache().is_empty());
    let (c, a) = r.step(Event::Page {
        items: vec![(k("b"), json!(2))],
        resource_version: "10".into(),
        next: None,
    });
    assert_eq!(c, vec![Change::Resync]);
    assert_eq!(
        a,
        Some(Action::Watch {
            resource_version: "10".into()
        })
    );
    assert_eq!(r.cache().len(), 2);
    let (c, _) = r.step(Event::Upsert(k("a"), json!(3), "11".into()));
    assert_eq!(c, vec![Change::Upsert(k("a"))]);
    // The same state again (a replayed event) is no change.
    let (c, _) = r.step(Event::Upsert(k("a"), json!(3), "11".into()));
    assert!(c.is_empty());
    let (_, _) = r.step(Event::Bookmark("15".into()));
    let (_, a) = r.step(Event::WatchEnded);
    assert_eq!(
        a,
        Some(Action::Watch {
            resource_version: "15".into()
        })
    );
    let (_, a) = r.step(Event::Gone);
    assert_eq!(
        a,
        Some(Action::List {
            continue_token: None
        })
    );
    // b was deleted while the watch was lost: the relist drops it.
    let (c, _) = r.step(Event::Page {
        items: vec![(k("a"), json!(3))],
        resource_version: "20".into(),
        next: None,
    });
    assert_eq!(c, vec![Change::Resync]);
    assert!(!r.cache().contains_key(&k("b")));
}

#[test]
fn backoff_doubles_and_caps() {
    let mut r = Reflector::new();
    let mut waits = Vec::new();
    for _ in 0..7 {
        if let (_, Some(Action::BackOff(d))) = r.step(Event::Failed) {
            waits.push(d.as_secs());
        }
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
}

proptest! {
    /// Whatever the interleaving of watch cuts and 410s, once the last list
    /// (or event) is in, the cache equals the server's state.
    #[test]
    fn cache_converges_to_server(ops in proptest::collection::vec((0u8..6, 0u8..5, 0u8..9), 1..60)) {
        let mut server: BTreeMap<Key, serde_json::Value> = BTreeMap::new();
        let mut r = Reflector::new();
        let mut rv = 0u64;
        let mut watching = false;
        for (op, name, val) in ops {
            let key = k(&format!("o{name}"));
            match op {
                0 | 1 => {
                    rv += 1;
                    server.insert(key.clone(), json!(val));
                    if watching { r.step(Event::Upsert(key, json!(val), rv.to_string())); }
                }
                2 => {
                    if server.remove(&key).is_some() {
                        rv += 1;
                        if watching { r.step(Event::Delete(key, rv.to_string())); }
                    }
                }
                3 => { watching = false; let _ = r.step(Event::Gone); }
                4 => { watching = false; let _ = r.step(Event::Failed); }
                _ => {
                    if !watching {
                        let items: Vec<_> = server.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        let half = items.len() / 2;
                        r.step(Event::Page { items: items[..half].to_vec(), resource_version: rv.to_string(), next: Some("c".into()) });
                        r.step(Event::Page { items: items[half..].to_vec(), resource_version: rv.to_string(), next: None });
                        watching = true;
                    }
                }
            }
        }
        if !watching {
            let items: Vec<_> = server.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            r.step(Event::Page { items, resource_version: rv.to_string(), next: None });
        }
        prop_assert_eq!(r.cache(), &server);
        let want = rv.to_string();
        prop_assert_eq!(r.resource_version(), Some(want.as_str()));
    }
}
