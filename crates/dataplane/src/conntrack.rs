//! Conntrack entries of removed workload addresses, deleted over
//! ctnetlink (`NETLINK_NETFILTER`, subsystem `CTNETLINK`), as Felix does
//! when a workload's route goes: every entry with the address as the
//! original or reply source or destination, so a new pod given the address
//! inherits no flow of the old one and no established flow outlives its
//! endpoint.
//!
//! The kernel deletes an entry by its original tuple (and zone); the table
//! is dumped once per family, the matching entries' tuples are sent back
//! in `DELETE` requests. An entry already gone (`ENOENT`) is not an error.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;

use netlink_sys::Socket;

use crate::netlink::Error;
use crate::nfnl::{self, NLMSG_DONE, attrs, messages};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ENOENT: i32 = 2;

/// One conntrack entry as the kernel listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Original direction (source, destination).
    pub orig: (IpAddr, IpAddr),
    /// Reply direction (source, destination).
    pub reply: (IpAddr, IpAddr),
    /// The raw `CTA_TUPLE_ORIG` attribute and `CTA_ZONE` (if any) that
    /// name the entry in a delete request.
    key: Vec<u8>,
}

impl Entry {
    /// Whether `a` is any of the entry's four addresses.
    pub fn involves(&self, a: &BTreeSet<IpAddr>) -> bool {
        [self.orig.0, self.orig.1, self.reply.0, self.reply.1]
            .iter()
            .any(|x| a.contains(x))
    }
}

fn address(p: &[u8]) -> Option<IpAddr> {
    match p.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(p).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(p).ok()?)),
        _ => None,
    }
}

/// (source, destination) of a `CTA_TUPLE_*` payload.
fn tuple(p: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let ip = attrs(p).find(|a| a.kind == CTA_TUPLE_IP)?;
    let (mut src, mut dst) = (None, None);
    for a in attrs(ip.payload) {
        match a.kind {
            CTA_IP_V4_SRC | CTA_IP_V6_SRC => src = address(a.payload),
            CTA_IP_V4_DST | CTA_IP_V6_DST => dst = address(a.payload),
            _ => {}
        }
    }
    Some((src?, dst?))
}

/// An entry from one `IPCTNL_MSG_CT_NEW` message's attributes.
fn entry<'a>(list: impl Iterator<Item = nfnl::Attr<'a>>) -> Option<Entry> {
    let (mut orig, mut reply, mut key, mut zone) = (None, None, Vec::new(), Vec::new());
    for a in list {
        match a.kind {
            CTA_TUPLE_ORIG => {
                orig = tuple(a.payload);
                key = a.whole.to_vec();
            }
            CTA_TUPLE_REPLY => reply = tuple(a.payload),
            CTA_ZONE => zone = a.whole.to_vec(),
            _ => {}
        }
    }
    let pad = |v: &mut Vec<u8>| {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    };
    pad(&mut key);
    key.extend_from_slice(&zone);
    pad(&mut key);
    Some(Entry {
        orig: orig?,
        reply: reply?,
        key,
    })
}

/// A ctnetlink socket of the calling thread's network namespace.
pub struct Conntrack {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Conntrack {
    /// A socket in the calling thread's namespace.
    pub fn open() -> Result<Conntrack, Error> {
        Ok(Conntrack {
            socket: nfnl::open()?,
            seq: 0,
            buf: Vec::with_capacity(1 << 17),
        })
    }

    fn request(&mut self, kind: u16, flags: u16, family: u8, body: &[u8]) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + 4 + body.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.push(family);
        out.push(0); // NFNETLINK_V0
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Reads answers to request `seq` until it is done (dump) or acked,
    /// handing each data message to `each`.
    fn answers(
        &mut self,
        what: &str,
        seq: u32,
        mut each: impl FnMut(&nfnl::Msg<'_>),
    ) -> Result<(), Error> {
        loop {
            let data = nfnl::receive(&self.socket, &mut self.buf, what)?;
            for m in messages(data) {
                if m.seq != seq {
                    continue;
                }
                match m.error() {
                    Some(code) if code < 0 => {
                        return Err(Error::new(what, io::Error::from_raw_os_error(-code)));
                    }
                    Some(_) => return Ok(()),
                    None if m.kind == NLMSG_DONE => return Ok(()),
                    None => each(&m),
                }
            }
        }
    }

    /// Every entry of one family (`false`: IPv4, `true`: IPv6).
    pub fn list(&mut self, v6: bool) -> Result<Vec<Entry>, Error> {
        let family = if v6 { AF_INET6 } else { AF_INET };
        let out = self.request(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, family, &[]);
        let seq = self.seq;
        let what = "list conntrack entries";
        self.socket.send(&out, 0).map_err(|e| Error::new(what, e))?;
        let mut entries = Vec::new();
        self.answers(what, seq, |m| entries.extend(entry(m.attrs())))?;
        Ok(entries)
    }

    /// Deletes every entry that has one of `addrs` as its original or
    /// reply source or destination; returns how many went.
    pub fn forget(&mut self, addrs: &BTreeSet<IpAddr>) -> Result<usize, Error> {
        let mut gone = 0;
        for v6 in [false, true] {
            if !addrs.iter().any(|a| a.is_ipv6() == v6) {
                continue;
            }
            let family = if v6 { AF_INET6 } else { AF_INET };
            for e in self.list(v6)?.into_iter().filter(|e| e.involves(addrs)) {
                let out = self.request(
                    IPCTNL_MSG_CT_DELETE,
                    NLM_F_REQUEST | NLM_F_ACK,
                    family,
                    &e.key,
                );
                let seq = self.seq;
                let what = format!("delete conntrack entry {} -> {}", e.orig.0, e.orig.1);
                self.socket
                    .send(&out, 0)
                    .map_err(|x| Error::new(&what, x))?;
                match self.answers(&what, seq, |_| {}) {
                    Ok(()) => gone += 1,
                    Err(x) if x.errno() == Some(ENOENT) => {}
                    Err(x) => return Err(x),
                }
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    fn tuple_attr(out: &mut Vec<u8>, kind: u16, src: [u8; 4], dst: [u8; 4]) {
        let mut ip = Vec::new();
        attr(&mut ip, CTA_IP_V4_SRC, &src);
        attr(&mut ip, CTA_IP_V4_DST, &dst);
        let mut t = Vec::new();
        attr(&mut t, CTA_TUPLE_IP | 0x8000, &ip);
        attr(out, kind | 0x8000, &t);
    }

    #[test]
    fn an_entry_is_read_and_keyed_by_its_original_tuple_and_zone() {
        let mut msg = Vec::new();
        tuple_attr(&mut msg, CTA_TUPLE_ORIG, [10, 0, 0, 1], [10, 0, 0, 2]);
        let orig_len = msg.len();
        tuple_attr(&mut msg, CTA_TUPLE_REPLY, [10, 0, 0, 2], [192, 168, 0, 1]);
        attr(&mut msg, CTA_ZONE, &7u16.to_be_bytes());
        let e = entry(attrs(&msg)).unwrap();
        assert_eq!(
            e.orig,
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        );
        assert_eq!(e.reply.1, "192.168.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(&e.key[..orig_len], &msg[..orig_len]);
        assert_eq!(e.key.len(), orig_len + 8);
        let set = |s: &str| BTreeSet::from([s.parse::<IpAddr>().unwrap()]);
        assert!(e.involves(&set("192.168.0.1")));
        assert!(e.involves(&set("10.0.0.2")));
        assert!(!e.involves(&set("10.0.0.3")));
    }

    #[test]
    fn broken_messages_are_skipped_not_trusted() {
        assert_eq!(entry(attrs(&[])), None);
        assert_eq!(entry(attrs(&[200, 0, 1, 0, 1, 2])), None);
        let mut msg = Vec::new();
        tuple_attr(&mut msg, CTA_TUPLE_ORIG, [10, 0, 0, 1], [10, 0, 0, 2]);
        // No reply tuple.
        assert_eq!(entry(attrs(&msg)), None);
    }
}
