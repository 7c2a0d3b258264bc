//! What std cannot do safely: sockets with TCP MD5 signatures (RFC 2385,
//! BGP passwords) and a chosen source address before connecting, and the
//! local time zone's offset (for log timestamps).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// `TCP_MD5SIG` (linux/tcp.h).
const TCP_MD5SIG: libc::c_int = 14;
/// `TCP_MD5SIG_MAXKEYLEN`.
pub const MAX_KEY_LEN: usize = 80;
/// `sizeof(struct tcp_md5sig)`: a 128-byte sockaddr_storage, flags,
/// prefix length, key length (u16), ifindex (u32), the key.
const MD5SIG_LEN: usize = 128 + 1 + 1 + 2 + 4 + MAX_KEY_LEN;

/// The `struct tcp_md5sig` for `peer` and `key` (an empty key deletes).
fn md5sig(peer: IpAddr, key: &[u8]) -> io::Result<[u8; MD5SIG_LEN]> {
    if key.len() > MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a TCP MD5 key has at most {MAX_KEY_LEN} bytes"),
        ));
    }
    let mut b = [0u8; MD5SIG_LEN];
    match peer {
        IpAddr::V4(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[8..24].copy_from_slice(&a.octets());
        }
    }
    b[130..132].copy_from_slice(&(key.len() as u16).to_ne_bytes());
    b[136..136 + key.len()].copy_from_slice(key);
    Ok(b)
}

/// Signs (with `key`) every segment exchanged with `peer` on socket `fd`
/// (a listener or a socket about to connect); an empty key removes it.
pub fn set_tcp_md5(fd: RawFd, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    let sig = md5sig(peer, key)?;
    // SAFETY: `sig` is a live, initialised buffer of the length passed,
    // laid out as the kernel's `struct tcp_md5sig`; `fd` is only read.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_MD5SIG,
            sig.as_ptr().cast(),
            MD5SIG_LEN as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Connects to `to` within `timeout`, from `source` if given, signing with
/// `md5` if given.
pub fn connect(
    to: SocketAddr,
    source: Option<IpAddr>,
    md5: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(src) = source {
        s.bind(&SockAddr::from(SocketAddr::new(src, 0)))?;
    }
    if let Some(key) = md5 {
        set_tcp_md5(s.as_raw_fd(), to.ip(), key)?;
    }
    s.connect_timeout(&SockAddr::from(to), timeout)?;
    Ok(s.into())
}

/// Sets (or, with an empty key, removes) the key a listener expects from
/// `peer`. On a dual-stack listener an IPv4 peer is given as its
/// IPv4-mapped IPv6 address, which the kernel files as an IPv4 key.
pub fn listener_md5(l: &TcpListener, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    let peer = match (l.local_addr()?, peer) {
        (SocketAddr::V6(_), IpAddr::V4(a)) => IpAddr::V6(a.to_ipv6_mapped()),
        _ => peer,
    };
    set_tcp_md5(l.as_raw_fd(), peer, key)
}

/// Handshaken connections the kernel queues for `accept` (capped by
/// `net.core.somaxconn`, whose default this is; Go's `net.Listen`, so
/// GoBGP, asks for somaxconn too). With 128, a burst of a few hundred
/// connections overflowed the queue: with SYN cookies the kernel then
/// drops the last ACK of the handshake, and a peer that reconnected in
/// the burst waited for its retransmissions.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Listens on `port` of every address, IPv4 and IPv6 alike (one
/// dual-stack socket; IPv4 alone where IPv6 is off), with `SO_REUSEADDR`
/// and a backlog of [`LISTEN_BACKLOG`].
pub fn listen_any(port: u16) -> io::Result<TcpListener> {
    let on = |addr: SocketAddr| -> io::Result<TcpListener> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            s.set_only_v6(false)?;
        }
        s.set_reuse_address(true)?;
        s.bind(&SockAddr::from(addr))?;
        s.listen(LISTEN_BACKLOG)?;
        Ok(s.into())
    };
    on(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)))
        .or_else(|_| on(SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn layout_matches_the_kernel_struct() {
        let b = md5sig("10.0.0.1".parse().unwrap(), b"secret").unwrap();
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), libc::AF_INET as u16);
        assert_eq!(&b[4..8], &[10, 0, 0, 1]);
        assert_eq!(u16::from_ne_bytes([b[130], b[131]]), 6);
        assert_eq!(&b[136..142], b"secret");
        assert!(md5sig("10.0.0.1".parse().unwrap(), &[0; 81]).is_err());
    }

    /// Signed connections on loopback: matching keys talk; a client
    /// without the key never gets through.
    #[test]
    fn signed_connections_need_the_key() {
        check_signed(&TcpListener::bind("127.0.0.1:0").unwrap(), "127.0.0.1");
    }

    /// The same on the dual-stack listener BGP uses, from IPv4 (a mapped
    /// address to the kernel) and from IPv6.
    #[test]
    fn dual_stack_listener_takes_keys_of_both_families() {
        let l = listen_any(0).unwrap();
        assert!(l.local_addr().unwrap().is_ipv6(), "IPv6 is on here");
        check_signed(&l, "127.0.0.1");
        check_signed(&l, "::1");
    }

    fn check_signed(l: &TcpListener, peer: &str) {
        let lo: IpAddr = peer.parse().unwrap();
        let to = SocketAddr::new(lo, l.local_addr().unwrap().port());
        if let Err(e) = listener_md5(l, lo, b"s3cret") {
            // Kernels without CONFIG_TCP_MD5SIG say so; nothing to test.
            assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}");
            return;
        }
        let got = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 2];
                c.read_exact(&mut buf).unwrap();
                buf
            });
            let mut c = connect(to, Some(lo), Some(b"s3cret"), Duration::from_secs(2)).unwrap();
            c.write_all(b"ok").unwrap();
            t.join().unwrap()
        });
        assert_eq!(&got, b"ok");
        // No key: the listener's kernel drops the SYN.
        let err = connect(to, None, None, Duration::from_millis(500)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        // Wrong key: the same.
        let err = connect(to, None, Some(b"wrong"), Duration::from_millis(500)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    }
}

/// The local time zone's offset from UTC, in seconds, at `unix_secs` (as
/// `localtime_r` sees it: `TZ`, else `/etc/localtime`); 0 when unknown.
pub fn local_offset(unix_secs: i64) -> i32 {
    let t: libc::time_t = unix_secs;
    // SAFETY: `libc::tm` is plain data, for which all-zero bytes are a
    // valid value.
    #[allow(unsafe_code)]
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers come from live references to properly aligned
    // values; `localtime_r` is the thread-safe variant: it writes only
    // into `tm` and keeps no pointer to either argument.
    #[allow(unsafe_code)]
    let out = unsafe { libc::localtime_r(&t, &mut tm) };
    if out.is_null() {
        0
    } else {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

#[cfg(test)]
mod local_offset_tests {
    #[test]
    fn offset_is_within_a_day() {
        let o = super::local_offset(1_796_277_166);
        assert!((-14 * 3600..=14 * 3600).contains(&o), "{o}");
    }
}
