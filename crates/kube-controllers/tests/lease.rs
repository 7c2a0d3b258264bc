//! Two replicas electing through a Lease on the fake API server (create,
//! replace at resourceVersion, 409 Conflict): at every tick at most one
//! holds an unexpired lease; when the leader stops renewing, the other takes
//! over only after the lease duration; racing writes get 409.

mod fake_api;

use std::time::Duration;

use calico_kube_controllers::kube::{LeaseApi, elect};
use fake_api::FakeApi;

#[test]
fn two_replicas_one_writer() {
    let server = FakeApi::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let api = server.client(dir.path());
    let d = Duration::from_secs(15);
    let t0 = 1_800_000_000u64;
    let round = |me: &str, now: u64| {
        elect(&api, "kube-system", "calico-kube-controllers", me, d, now)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut leaders = Vec::new();
    for tick in 0..60u64 {
        let now = t0 + tick;
        // "a" is stopped between ticks 20 and 40.
        let a = !(20..40).contains(&tick) && round("a", now);
        let b = round("b", now);
        assert!(!(a && b), "two leaders at tick {tick}");
        leaders.push(if a {
            "a"
        } else if b {
            "b"
        } else {
            "-"
        });
    }
    assert_eq!(leaders[0], "a");
    // b takes over only once a's last renewal (tick 19) expired (tick 34).
    let first_b = leaders.iter().position(|l| *l == "b").unwrap_or(usize::MAX);
    assert_eq!(first_b, 19 + 15);
    // a comes back and follows b.
    assert!(leaders[40..].iter().all(|l| *l == "b"), "{leaders:?}");

    // Two replicas racing on the same read: exactly one write wins (409).
    let read = api
        .get_lease("kube-system", "calico-kube-controllers")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no lease"));
    let mut mine = read.clone();
    mine.holder = Some("x".into());
    let mut theirs = read;
    theirs.holder = Some("y".into());
    let w1 = api.write_lease("kube-system", "calico-kube-controllers", &mine);
    let w2 = api.write_lease("kube-system", "calico-kube-controllers", &theirs);
    assert_eq!((w1.ok(), w2.ok()), (Some(true), Some(false)));
    assert!(server.hits("409") >= 1);
}
