//! The host-wide IPAM lock: a `flock` on one file (Calico's
//! `/var/run/calico/ipam.lock`, or the CNI config's `ipam_lock_file`) that
//! the plugins and calico-node's IPAM service take before allocating or
//! releasing, so that only one allocation runs on a host at a time.
//!
//! The file is private to its owner: created `0600` whatever the umask,
//! never through a symbolic link (`O_NOFOLLOW`), refused when it is not a
//! regular file or belongs to another user, and narrowed to `0600` when an
//! older version left it wider. Waiting is bounded: [`acquire`] polls with
//! `LOCK_NB` until its deadline and then fails naming the file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};

/// How long the plugins wait for the lock unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file (or its directory) cannot be opened or created.
    #[error("IPAM lock {path}: {source}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A symbolic link sits where the lock file should be.
    #[error("IPAM lock {path} is a symbolic link: refusing to follow it (remove it)")]
    Symlink {
        /// The lock file.
        path: PathBuf,
    },
    /// Something other than a regular file of this user sits there.
    #[error("IPAM lock {path} is {what}: refusing to use it (remove it)")]
    Unfit {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Another process held the lock until the deadline.
    #[error(
        "IPAM lock {path} is still held by another process after {secs:.1} s: try again later",
        secs = .waited.as_secs_f64()
    )]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
}

impl LockError {
    /// Whether waiting longer might help (the lock was busy).
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::Timeout { .. })
    }
}

/// Opens (creating `0600`) the lock file at `path`, checked as the module
/// header says; creates its directory if missing.
pub fn open(path: &Path) -> Result<File, LockError> {
    let io_err = |source: io::Error| LockError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    // Read-only and NONBLOCK: a FIFO planted here opens at once (and is
    // then refused) instead of blocking; flock needs no write access.
    let flags = OFlags::CREATE | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags | OFlags::NONBLOCK, Mode::from_raw_mode(0o600)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(LockError::Symlink {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(e.into())),
    };
    let unfit = |what: String| LockError::Unfit {
        path: path.to_path_buf(),
        what,
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e.into()))?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if kind != rustix::fs::FileType::RegularFile {
        return Err(unfit(format!("not a regular file ({kind:?})")));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(unfit(format!(
            "owned by uid {}, not by this user (uid {me})",
            st.st_uid
        )));
    }
    if st.st_mode & 0o7777 != 0o600 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600)).map_err(|e| io_err(e.into()))?;
    }
    Ok(File::from(fd))
}

/// Takes the lock at `path`, waiting at most `wait`.
pub fn acquire(path: &Path, wait: Duration) -> Result<HostLock, LockError> {
    acquire_until(path, Instant::now() + wait)
}

/// Takes the lock at `path`, waiting until `deadline` at the latest (one
/// attempt even when it has passed).
pub fn acquire_until(path: &Path, deadline: Instant) -> Result<HostLock, LockError> {
    let file = open(path)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(HostLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(LockError::Open {
                    path: path.to_path_buf(),
                    source: e.into(),
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LockError::Timeout {
                path: path.to_path_buf(),
                waited: now - start,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub/ipam.lock");
        let old = rustix::process::umask(Mode::from_raw_mode(0o022));
        let lock = acquire(&path, Duration::ZERO);
        rustix::process::umask(old);
        assert!(lock.is_ok(), "{lock:?}");
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode, 0o600);
        // A file an older version left world-readable is narrowed.
        drop(lock);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(acquire(&path, Duration::ZERO).is_ok());
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_symlink_or_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("ipam.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
        let e = acquire(&link, Duration::ZERO).err();
        assert!(matches!(e, Some(LockError::Symlink { .. })), "{e:?}");
        assert!(!target.exists(), "the link's target was created");
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(&link.display().to_string()), "{msg}");
        let fifo = dir.path().join("fifo.lock");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = acquire(&fifo, Duration::ZERO).err();
        assert!(matches!(e, Some(LockError::Unfit { .. })), "{e:?}");
    }

    #[test]
    fn a_held_lock_ends_in_a_clear_error_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("ipam.lock");
        // Another holder: its own open file description.
        let held = acquire(&path, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
        let e = acquire(&path, Duration::from_millis(30)).err();
        assert!(e.as_ref().is_some_and(LockError::is_timeout), "{e:?}");
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("still held"),
            "{msg}"
        );
        drop(held);
        assert!(acquire(&path, Duration::ZERO).is_ok());
    }
}
