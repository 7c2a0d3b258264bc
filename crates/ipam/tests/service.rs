//! The IPAM service's request handling (issue 19, point 5) over a real
//! SQLite file and a real lock file: expired requests are dropped, the host
//! IPAM lock is taken, old request lines still parse.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use calico_api::{Resource, decode_documents};
use calico_datastore::local::LocalStore;
use calico_datastore::{Client, Store};
use calico_ipam::Ipam;
use calico_ipam::hostlock;
use calico_ipam::service::{Envelope, FailureClass, Request, Response, answer_envelope};

const STORE: &str = "local:/test";

struct Fx {
    ipam: Ipam,
    dir: tempfile::TempDir,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn Store> =
        Arc::new(LocalStore::open(dir.path().join("ds.db")).unwrap_or_else(|e| panic!("{e}")));
    let client = Client::new(store.clone());
    let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.20.0.0/24, blockSize: 28}\n";
    for r in decode_documents(pool).unwrap_or_else(|e| panic!("{e}")) {
        let r: Resource = r.unwrap_or_else(|e| panic!("{e}"));
        client.apply(r).unwrap_or_else(|e| panic!("{e}"));
    }
    Fx {
        ipam: Ipam::new(store),
        dir,
    }
}

fn assign(handle: &str) -> Request {
    Request::Assign {
        store: STORE.into(),
        handle: handle.into(),
        node: "n1".into(),
        attrs: BTreeMap::new(),
        specific: None,
        num_v4: 1,
        num_v6: 0,
        v4_pools: vec![],
        v6_pools: vec![],
    }
}

fn is_expired(r: &Response) -> bool {
    matches!(
        r,
        Response::Failed {
            class: FailureClass::Expired,
            ..
        }
    )
}

#[test]
fn a_request_past_its_deadline_is_not_carried_out() {
    let f = fx();
    let env = Envelope {
        deadline_ms: Some(calico_ipam::service::now_ms().saturating_sub(1)),
        ..Envelope::new(assign("net.late"), Duration::ZERO, None)
    };
    let r = answer_envelope(&f.ipam, STORE, &env);
    assert!(is_expired(&r), "{r:?}");
    assert_eq!(f.ipam.ips_by_handle("net.late"), Ok(vec![]));
    // Within its deadline it is.
    let env = Envelope::new(assign("net.late"), Duration::from_secs(60), None);
    let r = answer_envelope(&f.ipam, STORE, &env);
    assert!(
        matches!(&r, Response::Ok { ips } if ips.len() == 1),
        "{r:?}"
    );
}

#[test]
fn the_server_takes_the_clients_lock() {
    let f = fx();
    let lock = f.dir.path().join("ipam.lock");
    // The plugin's own fallback holds the lock past the request's deadline:
    // the server must not run the request beside it, nor after it.
    let held = hostlock::acquire(&lock, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let env = Envelope::new(
        assign("net.racing"),
        Duration::from_millis(200),
        Some(lock.clone()),
    );
    let r = answer_envelope(&f.ipam, STORE, &env);
    assert!(is_expired(&r), "{r:?}");
    assert_eq!(f.ipam.ips_by_handle("net.racing"), Ok(vec![]));
    drop(held);
    let env = Envelope::new(assign("net.racing"), Duration::from_secs(60), Some(lock));
    let r = answer_envelope(&f.ipam, STORE, &env);
    assert!(
        matches!(&r, Response::Ok { ips } if ips.len() == 1),
        "{r:?}"
    );
    // A lock file nobody can open (so no fallback can be running) does not
    // stop the service.
    let env = Envelope::new(
        assign("net.nolock"),
        Duration::from_secs(60),
        Some("/proc/calico-rs-no-such-dir/ipam.lock".into()),
    );
    let r = answer_envelope(&f.ipam, STORE, &env);
    assert!(
        matches!(&r, Response::Ok { ips } if ips.len() == 1),
        "{r:?}"
    );
}

#[test]
fn wire_format() {
    // A line from a plugin without deadline or lock still parses.
    let old = serde_json::to_string(&assign("net.c")).unwrap_or_default();
    let env: Envelope = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}: {old}"));
    assert_eq!(env.request, assign("net.c"));
    assert_eq!((env.deadline_ms, env.lock_file), (None, None));
    let env = Envelope::new(
        assign("net.c"),
        Duration::from_secs(5),
        Some("/run/x.lock".into()),
    );
    let line = serde_json::to_string(&env).unwrap_or_default();
    assert!(
        line.contains("\"op\":\"assign\"") && line.contains("\"deadlineMs\":"),
        "{line}"
    );
    let back: Envelope = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(back, env);
    let expired = Response::Failed {
        class: FailureClass::Expired,
        message: "late".into(),
    };
    let line = serde_json::to_string(&expired).unwrap_or_default();
    assert!(line.contains("\"expired\""), "{line}");
}
