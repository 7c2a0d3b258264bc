//! Network namespaces by path (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
//!
//! Entering a namespace changes only the calling thread, so [`NetNs::run`]
//! runs its closure on a fresh scoped thread that enters the namespace and
//! then ends: the caller's own thread never leaves its namespace, and a
//! panic or error cannot leave a thread stranded in the wrong one.
//!
//! [`NetNs::open`] never blocks and only ever holds a network namespace:
//! the path is opened with `O_PATH` (a FIFO there is not opened for
//! reading, so nothing waits for a writer), must be a file of the
//! namespace filesystem (nsfs), and the kernel must accept it as a
//! network namespace (`setns(fd, CLONE_NEWNET)` on a throwaway thread,
//! which checks the type before any permission). Anything else is a
//! [`NotNetNs`] error, of kind [`io::ErrorKind::InvalidInput`].

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// `NSFS_MAGIC` from `linux/magic.h`: the filesystem of namespace files.
const NSFS_MAGIC: i128 = 0x6e73_6673;

/// A path that exists but is not a network namespace.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a network namespace: it is {what}", path.display())]
pub struct NotNetNs {
    pub path: PathBuf,
    /// What it is instead: `a fifo`, `a directory`, ...
    pub what: &'static str,
}

/// An open handle on a network namespace.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "an unknown kind of file",
    }
}

impl NetNs {
    /// Opens the namespace at `path`; checks, without blocking, that it is
    /// a network namespace ([`NotNetNs`] when it is not; a missing path is
    /// [`io::ErrorKind::NotFound`]).
    pub fn open(path: impl AsRef<Path>) -> io::Result<NetNs> {
        let path = path.as_ref().to_path_buf();
        let not = |what| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                NotNetNs {
                    path: path.clone(),
                    what,
                },
            )
        };
        // O_PATH: no open(2) side effects (a FIFO would wait for a writer).
        let handle = rustix::fs::open(&path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
        let kind = FileType::from_raw_mode(rustix::fs::fstat(&handle)?.st_mode);
        if kind != FileType::RegularFile {
            return Err(not(describe(kind)));
        }
        if i128::from(rustix::fs::fstatfs(&handle)?.f_type) != NSFS_MAGIC {
            return Err(not("a regular file"));
        }
        // setns needs a real descriptor: reopen that very inode.
        let file = File::open(format!("/proc/self/fd/{}", handle.as_raw_fd()))?;
        drop(handle);
        let fd = file.as_fd();
        let probe = std::thread::scope(|s| {
            s.spawn(move || move_into_link_name_space(fd, Some(LinkNameSpaceType::Network)))
                .join()
        });
        match probe {
            Ok(Ok(())) => {}
            // The type is checked before the caller's rights: EINVAL is
            // another kind of namespace; EPERM means it is a network
            // namespace this process may not enter (entering fails later).
            Ok(Err(rustix::io::Errno::INVAL)) => return Err(not("a namespace of another kind")),
            Ok(Err(rustix::io::Errno::PERM)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(io::Error::other("namespace probe thread panicked")),
        }
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
