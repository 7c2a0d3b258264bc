//! The local store's files are private to their owner whatever the umask
//! (its own test binary: the umask is process-wide).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;

use calico_datastore::local::LocalStore;
use calico_datastore::{Op, Store};

#[test]
fn store_file_wal_and_shm_are_0600_under_a_permissive_umask() {
    let old = rustix::process::umask(rustix::fs::Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("ds.db");
    let store = LocalStore::open(&path).unwrap();
    store
        .txn(
            &[],
            &[Op::Put {
                key: "/calico/x".into(),
                value: b"secret".to_vec(),
            }],
        )
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} has mode {mode:o}");
    }
    drop(store);
    rustix::process::umask(old);
}
