//! Elements of nftables interval sets of addresses, changed over netlink
//! (`NETLINK_NETFILTER`) in one atomic batch.
//!
//! `nft -f` reads every set of a table, with its elements, before it
//! changes one element of an interval set, and the kernel looks each set up
//! by name to dump it: with thousands of sets one small change costs
//! hundreds of milliseconds. Here an element change is the two kernel
//! elements the interval stands for (its first address, and the address
//! after its last flagged as an interval end), as `nft` itself sends them,
//! and nothing is read.
//!
//! Only sets of `ipv4_addr` / `ipv6_addr` with `flags interval` are meant;
//! the caller creates tables and sets with `nft`.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_sys::Socket;

use crate::netlink::Error;
use crate::nfnl::{self, messages};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWGEN: u16 = 15;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
/// Networks per message (each is two elements of about 40 bytes).
const PER_MESSAGE: usize = 400;

/// One set's element changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetChange {
    /// The set's name.
    pub set: String,
    /// Networks to delete.
    pub delete: Vec<IpNet>,
    /// Networks to add.
    pub add: Vec<IpNet>,
}

/// A `NETLINK_NETFILTER` socket of the calling thread's namespace.
pub struct NfTables {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// What the send buffer holds at least.
    sndbuf: usize,
}

fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A nested attribute whose payload `f` writes.
fn nested(out: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = (out.len() - at) as u16;
    out[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    out[at + 2..at + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The address after `a`, if any.
fn next(a: IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V4(v) => u32::from(v)
            .checked_add(1)
            .map(|n| IpAddr::from(n.to_be_bytes())),
        IpAddr::V6(v) => u128::from(v)
            .checked_add(1)
            .map(|n| IpAddr::from(n.to_be_bytes())),
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// The kernel elements of `net`: its first address, and the address after
/// its last as an interval end (none past the top of the space).
fn elements(out: &mut Vec<u8>, net: &IpNet) {
    let net = net.trunc();
    let mut one = |key: IpAddr, end: bool| {
        nested(out, NFTA_LIST_ELEM, |o| {
            nested(o, NFTA_SET_ELEM_KEY, |k| {
                attr(k, NFTA_DATA_VALUE, &octets(key))
            });
            if end {
                attr(
                    o,
                    NFTA_SET_ELEM_FLAGS,
                    &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
                );
            }
        });
    };
    one(net.network(), false);
    if let Some(after) = next(net.broadcast()) {
        one(after, true);
    }
}

impl NfTables {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<NfTables, Error> {
        Ok(NfTables {
            socket: nfnl::open()?,
            seq: 0,
            buf: Vec::with_capacity(1 << 16),
            // Below Linux's default (`net.core.wmem_default`, 208 KiB).
            sndbuf: 200 * 1024,
        })
    }

    fn header(
        &mut self,
        out: &mut Vec<u8>,
        kind: u16,
        flags: u16,
        family: u8,
        res_id: u16,
    ) -> usize {
        self.seq = self.seq.wrapping_add(1);
        let at = out.len();
        out.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.push(family);
        out.push(0); // NFNETLINK_V0
        out.extend_from_slice(&res_id.to_be_bytes());
        at
    }

    fn finish(out: &mut [u8], at: usize) {
        let len = (out.len() - at) as u32;
        out[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// The namespace's nftables generation: a number the kernel moves on
    /// with every committed change to any table (by `nft`, by this socket,
    /// by anyone). The same number twice means nothing changed between.
    pub fn generation(&mut self) -> Result<u32, Error> {
        let what = "read the nftables generation";
        let mut out = Vec::with_capacity(32);
        let at = self.header(
            &mut out,
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
            NLM_F_REQUEST,
            0,
            0,
        );
        Self::finish(&mut out, at);
        let seq = self.seq;
        self.socket.send(&out, 0).map_err(|e| Error::new(what, e))?;
        loop {
            let data = nfnl::receive(&self.socket, &mut self.buf, what)?;
            for m in messages(data) {
                if m.seq != seq {
                    continue;
                }
                if let Some(code) = m.error() {
                    if code < 0 {
                        return Err(Error::new(what, io::Error::from_raw_os_error(-code)));
                    }
                    continue;
                }
                if m.kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
                    continue;
                }
                return m
                    .attrs()
                    .find(|a| a.kind == NFTA_GEN_ID && a.payload.len() >= 4)
                    .map(|a| {
                        u32::from_be_bytes([a.payload[0], a.payload[1], a.payload[2], a.payload[3]])
                    })
                    .ok_or_else(|| {
                        Error::new(
                            what,
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                "no generation in the answer",
                            ),
                        )
                    });
            }
        }
    }

    /// Applies every change, deletes first, to table `inet <table>` in one
    /// batch: all of it or (on any error) none of it.
    pub fn apply(&mut self, table: &str, changes: &[SetChange]) -> Result<(), Error> {
        self.batch(table, changes, false)
    }

    /// [`NfTables::apply`], and in the same batch the table (made with
    /// `flags dormant`, so its chains sat on no hook) woken: the elements
    /// and the table's taking effect are one commit.
    pub fn apply_and_wake(&mut self, table: &str, changes: &[SetChange]) -> Result<(), Error> {
        self.batch(table, changes, true)
    }

    fn batch(&mut self, table: &str, changes: &[SetChange], wake: bool) -> Result<(), Error> {
        let what = || format!("set elements of inet {table}");
        let mut out = Vec::with_capacity(4096);
        let at = self.header(
            &mut out,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        Self::finish(&mut out, at);
        let mut acks = Vec::new();
        for deleting in [true, false] {
            for c in changes {
                let nets = if deleting { &c.delete } else { &c.add };
                for chunk in nets.chunks(PER_MESSAGE) {
                    let (kind, flags) = if deleting {
                        (NFT_MSG_DELSETELEM, NLM_F_REQUEST)
                    } else {
                        (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE)
                    };
                    let at = self.header(
                        &mut out,
                        (NFNL_SUBSYS_NFTABLES << 8) | kind,
                        flags,
                        NFPROTO_INET,
                        0,
                    );
                    acks.push((self.seq, at));
                    attr(&mut out, NFTA_SET_ELEM_LIST_TABLE, &cstr(table));
                    attr(&mut out, NFTA_SET_ELEM_LIST_SET, &cstr(&c.set));
                    nested(&mut out, NFTA_SET_ELEM_LIST_ELEMENTS, |o| {
                        for n in chunk {
                            elements(o, n);
                        }
                    });
                    Self::finish(&mut out, at);
                }
            }
        }
        if wake {
            let at = self.header(
                &mut out,
                (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE,
                NLM_F_REQUEST,
                NFPROTO_INET,
                0,
            );
            acks.push((self.seq, at));
            attr(&mut out, NFTA_TABLE_NAME, &cstr(table));
            attr(&mut out, NFTA_TABLE_FLAGS, &0u32.to_be_bytes());
            Self::finish(&mut out, at);
        }
        // Only the last message asks for an ack: the kernel answers a
        // batch's messages in order (an error for each that failed, then
        // the acks asked for), so that ack ends the answer; one ack per
        // message would overflow the receive buffer with a large batch.
        let Some(&(last_seq, last_at)) = acks.last() else {
            return Ok(());
        };
        let flags = u16::from_ne_bytes([out[last_at + 6], out[last_at + 7]]) | NLM_F_ACK;
        out[last_at + 6..last_at + 8].copy_from_slice(&flags.to_ne_bytes());
        let at = self.header(
            &mut out,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        Self::finish(&mut out, at);
        // A batch is one message: the socket's send buffer must hold it
        // whole (as nft does, the buffer is grown to the batch's size).
        if out.len() + 4096 > self.sndbuf {
            let want = out.len() + 4096;
            rustix::net::sockopt::set_socket_send_buffer_size_force(&self.socket, want)
                .or_else(|_| rustix::net::sockopt::set_socket_send_buffer_size(&self.socket, want))
                .map_err(|e| Error::new(what(), io::Error::from(e)))?;
            self.sndbuf = want;
        }
        self.socket
            .send(&out, 0)
            .map_err(|e| Error::new(what(), e))?;
        let mut waiting: std::collections::BTreeSet<u32> = [last_seq].into_iter().collect();
        let mut first_error: Option<io::Error> = None;
        while !waiting.is_empty() {
            let data = nfnl::receive(&self.socket, &mut self.buf, &what())?;
            for m in messages(data) {
                let Some(code) = m.error() else { continue };
                waiting.remove(&m.seq);
                if code < 0 && first_error.is_none() {
                    first_error = Some(io::Error::from_raw_os_error(-code));
                    // The batch is void: the kernel acks nothing more.
                    waiting.clear();
                }
            }
        }
        match first_error {
            Some(e) => Err(Error::new(what(), e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_its_first_address_and_an_end_after_it() {
        let mut out = Vec::new();
        elements(
            &mut out,
            &"10.0.0.2/32".parse().unwrap_or_else(|_| unreachable!()),
        );
        // Two list elements; the second carries the end flag (big endian 1).
        let text: Vec<u8> = out.clone();
        assert!(text.windows(4).any(|w| w == [10, 0, 0, 2]));
        assert!(text.windows(4).any(|w| w == [10, 0, 0, 3]));
        assert!(text.windows(4).any(|w| w == [0, 0, 0, 1]));
        let mut top = Vec::new();
        elements(
            &mut top,
            &"255.255.255.255/32"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(top.len() < out.len(), "no end element past the top");
        assert!(out.len().is_multiple_of(4));
    }
}
