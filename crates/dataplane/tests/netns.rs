//! `NetNs::open` accepts only network namespaces, and never blocks on what
//! it is given (a FIFO used to block it for ever). Needs no privileges.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use calico_dataplane::NetNs;
use calico_dataplane::netns::NotNetNs;

/// A directory of this test's own, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `NetNs::open(path)` on another thread; fails the test if it hangs.
fn open_within(path: &Path) -> std::io::Result<NetNs> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(NetNs::open(p));
    });
    // A guard against a hang, not a timing assertion: opening takes
    // microseconds, the old code never returned.
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("NetNs::open({}) hung", path.display()))
}

fn not_netns(path: &Path, what: &str) {
    let err = open_within(path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path:?}: {err}");
    let n = err
        .get_ref()
        .and_then(|i| i.downcast_ref::<NotNetNs>())
        .unwrap_or_else(|| panic!("{path:?}: {err}"));
    assert_eq!(n.what, what);
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a network namespace: it is {what}",
            path.display()
        )
    );
}

#[test]
fn only_network_namespaces_open() {
    let dir = Dir(std::env::temp_dir().join(format!("calico-rs-netns-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let fifo = dir.0.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let file = dir.0.join("file");
    std::fs::write(&file, "not a namespace").unwrap();

    not_netns(&fifo, "a fifo");
    not_netns(&file, "a regular file");
    not_netns(&dir.0, "a directory");
    not_netns(Path::new("/dev/null"), "a character device");
    // nsfs files of other kinds: valid namespaces, not network ones.
    not_netns(
        Path::new("/proc/self/ns/mnt"),
        "a namespace of another kind",
    );
    not_netns(
        Path::new("/proc/self/ns/uts"),
        "a namespace of another kind",
    );

    let missing = open_within(&dir.0.join("missing")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    // The real thing, through the magic link and as a plain path.
    open_within(Path::new("/proc/self/ns/net")).unwrap();
    NetNs::current().unwrap();
}
