//! Network namespaces by path (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
//!
//! Entering a namespace changes only the calling thread, so [`NetNs::run`]
//! runs its closure on a fresh scoped thread that enters the namespace and
//! then ends: the caller's own thread never leaves its namespace, and a
//! panic or error cannot leave a thread stranded in the wrong one.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// An open handle on a network namespace.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace at `path`; checks that it is a network namespace.
    pub fn open(path: impl AsRef<Path>) -> io::Result<NetNs> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)?;
        Ok(NetNs { file, path })
    }

    /// The namespace of this process (`/proc/self/ns/net`).
    pub fn current() -> io::Result<NetNs> {
        NetNs::open("/proc/thread-self/ns/net")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Runs `f` on a thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                move_into_link_name_space(fd, Some(LinkNameSpaceType::Network))
                    .map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("thread in namespace panicked")))
        })
    }
}
