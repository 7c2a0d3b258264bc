//! What the `NETLINK_NETFILTER` clients ([`crate::nftables`],
//! [`crate::conntrack`]) share: the socket, and reading the kernel's
//! answers (messages of a datagram, their attributes) without trusting a
//! length the datagram does not hold.

use netlink_sys::{Socket, SocketAddr};

use crate::netlink::Error;

const NETLINK_NETFILTER: isize = 12;
/// `NLMSG_ERROR`: an acknowledgement or an error.
pub(crate) const NLMSG_ERROR: u16 = 0x2;
/// `NLMSG_DONE`: the end of a dump.
pub(crate) const NLMSG_DONE: u16 = 0x3;

/// A `NETLINK_NETFILTER` socket of the calling thread's namespace,
/// connected to the kernel.
pub(crate) fn open() -> Result<Socket, Error> {
    let mut socket = Socket::new(NETLINK_NETFILTER)
        .map_err(|e| Error::new("open netfilter netlink socket", e))?;
    socket
        .bind_auto()
        .map_err(|e| Error::new("bind netfilter netlink socket", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| Error::new("connect netfilter netlink socket", e))?;
    let _ = socket.set_ext_ack(true);
    Ok(socket)
}

/// Receives one datagram into `buf`; returns what arrived.
pub(crate) fn receive<'b>(
    socket: &Socket,
    buf: &'b mut Vec<u8>,
    what: &str,
) -> Result<&'b [u8], Error> {
    buf.clear();
    let n = socket.recv(buf, 0).map_err(|e| Error::new(what, e))?;
    Ok(&buf[..n.min(buf.len())])
}

/// One netlink message of a received datagram.
pub(crate) struct Msg<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    bytes: &'a [u8],
}

impl<'a> Msg<'a> {
    /// For `NLMSG_ERROR`, the code (0: an acknowledgement, else `-errno`).
    pub fn error(&self) -> Option<i32> {
        match self.bytes.get(16..20) {
            Some(c) if self.kind == NLMSG_ERROR => {
                Some(i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            }
            _ => None,
        }
    }

    /// The attributes after the netlink header and the `nfgenmsg`.
    pub fn attrs(&self) -> impl Iterator<Item = Attr<'a>> {
        attrs(self.bytes.get(20..).unwrap_or(&[]))
    }
}

/// The messages of one datagram, up to the first one whose length does
/// not fit.
pub(crate) fn messages(mut data: &[u8]) -> impl Iterator<Item = Msg<'_>> {
    std::iter::from_fn(move || {
        let word = |at: usize| [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if data.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(word(0)) as usize;
        if len < 16 || len > data.len() {
            return None;
        }
        let msg = Msg {
            kind: u16::from_ne_bytes([data[4], data[5]]),
            seq: u32::from_ne_bytes(word(8)),
            bytes: &data[..len],
        };
        data = &data[((len + 3) & !3).min(data.len())..];
        Some(msg)
    })
}

/// One attribute: its kind (flags masked off), payload, and the whole
/// attribute with its header.
pub(crate) struct Attr<'a> {
    pub kind: u16,
    pub payload: &'a [u8],
    pub whole: &'a [u8],
}

/// The attributes of a payload, up to the first one that does not fit.
pub(crate) fn attrs(mut data: &[u8]) -> impl Iterator<Item = Attr<'_>> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        if len < 4 || len > data.len() {
            return None;
        }
        let a = Attr {
            kind: u16::from_ne_bytes([data[2], data[3]]) & 0x3fff,
            payload: &data[4..len],
            whole: &data[..len],
        };
        data = &data[((len + 3) & !3).min(data.len())..];
        Some(a)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_that_do_not_fit_end_the_reading() {
        // A message claiming 64 bytes in a 20-byte datagram.
        let mut d = vec![64, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(messages(&d).count(), 0);
        d[0] = 20;
        let m: Vec<_> = messages(&d).collect();
        assert_eq!(
            (m.len(), m[0].kind, m[0].seq, m[0].error()),
            (1, 2, 1, Some(0))
        );
        assert_eq!(attrs(&[8, 0, 1, 0, 1, 2]).count(), 0);
        assert_eq!(attrs(&[3, 0, 1, 0]).count(), 0);
        let a: Vec<_> = attrs(&[6, 0, 1, 0x80, 9, 9, 0, 0, 4, 0, 2, 0]).collect();
        assert_eq!(a.len(), 2);
        assert_eq!(
            (a[0].kind, a[0].payload, a[0].whole.len()),
            (1, &[9u8, 9][..], 6)
        );
        assert_eq!(a[1].kind, 2);
    }
}
