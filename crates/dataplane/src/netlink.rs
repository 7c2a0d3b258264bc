//! A small synchronous rtnetlink client: links, addresses, neighbours and
//! (in `route`) routes.
//!
//! One [`Netlink`] is one `NETLINK_ROUTE` socket. A socket belongs to the
//! network namespace of the thread that created it, so
//! [`Netlink::open_in`] creates it on a short-lived thread that entered the
//! target namespace; the socket then works in that namespace from any
//! thread. Everything is blocking: the CNI plugin is a one-shot process and
//! agents call this from their own threads, never from async workers.
//!
//! Each method names its `ip` equivalent. Requests wait for the kernel's
//! acknowledgement, so an `Ok` means the kernel applied the change.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::netns::NetNs;

/// A netlink request that the kernel refused, or a socket failure.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct Error {
    /// What was asked, e.g. `add route 10.0.0.1/32`.
    pub op: String,
    /// The kernel's answer.
    #[source]
    pub source: std::io::Error,
}

impl Error {
    pub(crate) fn new(op: impl Into<String>, source: std::io::Error) -> Self {
        Error {
            op: op.into(),
            source,
        }
    }

    /// The errno the kernel returned, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc_errno::EEXIST)
    }

    /// The object does not exist (`ENODEV`, `ENOENT`, `ESRCH`, `EADDRNOTAVAIL`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc_errno::ENODEV | libc_errno::ENOENT | libc_errno::ESRCH)
                | Some(libc_errno::EADDRNOTAVAIL)
        )
    }
}

/// The errno values this module looks at (Linux, all architectures we build for).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const ESRCH: i32 = 3;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const EADDRNOTAVAIL: i32 = 99;
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a link looks like, as far as this project cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    pub up: bool,
    /// `veth`, `vxlan`, ... when the kernel reports a kind.
    pub kind: Option<String>,
    /// `IFLA_LINK`: for a veth, its peer's index (in the peer's namespace).
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace of that peer, as this namespace
    /// numbers it (see [`Netlink::netns_id`]); absent when the peer is here.
    pub link_netnsid: Option<i32>,
}

mod route;
pub use route::{Kind, PROTO_BOOT, Route, RouteOp, Scope, TABLE_MAIN};

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The veth pair [`Netlink::create_veth`] makes.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    /// Name of the end that stays in this socket's namespace.
    pub name: &'a str,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// Name of the other end.
    pub peer_name: &'a str,
    pub peer_mac: Option<[u8; 6]>,
    /// The namespace the other end is created in (`None`: this one).
    pub peer_netns: Option<BorrowedFd<'a>>,
}

/// A synchronous `NETLINK_ROUTE` socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(|e| Error::new("open netlink socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| Error::new("bind netlink socket", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::new("connect netlink socket", e))?;
        // Extended acks make the kernel's error messages precise; not fatal.
        let _ = socket.set_ext_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// A socket in `ns`: created on a thread that entered `ns`.
    pub fn open_in(ns: &NetNs) -> Result<Netlink> {
        ns.run(Netlink::open)
            .map_err(|e| Error::new(format!("enter {}", ns.path().display()), e))?
    }

    fn request(
        &mut self,
        op: &dyn Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut replies = Vec::new();
        self.request_each(op, msg, flags, &mut |m| replies.push(m))?;
        Ok(replies)
    }

    /// Sends `msg` and hands each reply to `each` as it is read (a dump
    /// is never held whole).
    fn request_each(
        &mut self,
        op: &dyn Fn() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0).map_err(|e| Error::new(op(), e))?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        loop {
            self.buf.clear();
            let n = self
                .socket
                .recv(&mut self.buf, 0)
                .map_err(|e| Error::new(op(), e))?;
            let mut offset = 0;
            while offset < n.min(self.buf.len()) {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..])
                    .map_err(|e| {
                        Error::new(
                            op(),
                            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                        )
                    })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(err) => {
                        if err.code.is_some() {
                            return Err(Error::new(op(), err.to_io()));
                        }
                        if !dump {
                            return Ok(());
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(inner) => {
                        each(inner);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // ---- links ----

    /// `ip link show`
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.request(
            &|| "list links".into(),
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
                _ => None,
            })
            .collect())
    }

    /// `ip link show NAME`; `None` when there is no such link.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            &|| format!("get link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(replies) => Ok(replies.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ip netns list-id`, for one namespace: the id this namespace gives
    /// `ns` (what [`Link::link_netnsid`] reports), `None` when it gave none.
    /// Listing a link whose peer is in `ns` assigns one.
    pub fn netns_id(&mut self, ns: BorrowedFd<'_>) -> Result<Option<i32>> {
        let mut msg = NsidMessage::default();
        msg.attributes.push(NsidAttribute::Fd(
            u32::try_from(ns.as_raw_fd()).unwrap_or_default(),
        ));
        let replies = self.request(
            &|| "get netns id".into(),
            RouteNetlinkMessage::GetNsId(msg),
            0,
        )?;
        Ok(replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewNsId(n) => n.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(id) => Some(*id),
                    _ => None,
                }),
                _ => None,
            })
            .filter(|id| *id >= 0))
    }

    /// `ip link add NAME [address MAC] mtu MTU type veth peer name PEER [address MAC] [netns NS]`
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_string()));
        peer.attributes.push(LinkAttribute::Mtu(spec.mtu));
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(fd) = spec.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        if let Some(mac) = spec.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            &|| format!("create veth {} (peer {})", spec.name, spec.peer_name),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// `ip link set dev INDEX up`
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &|| format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// `ip link set dev INDEX address MAC`
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.request(
            &|| format!("set link {index} address"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// `ip link del dev INDEX`
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(
            &|| format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// `ip link add NAME type vxlan id VNI local LOCAL dstport PORT nolearning mtu MTU [address MAC]`
    pub fn create_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
        port: u16,
        mtu: u32,
        mac: Option<[u8; 6]>,
    ) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(vni),
                InfoVxlan::Local(local),
                InfoVxlan::Port(port),
                InfoVxlan::Learning(false),
            ])),
        ]));
        self.request(
            &|| format!("create vxlan {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// The VNI, local address and port of a VXLAN link.
    pub fn vxlan_info(&mut self, name: &str) -> Result<Option<(u32, Option<Ipv4Addr>, u16)>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = match self.request(
            &|| format!("get link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            0,
        ) {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        for m in &replies {
            let RouteNetlinkMessage::NewLink(l) = m else {
                continue;
            };
            for attr in &l.attributes {
                let LinkAttribute::LinkInfo(infos) = attr else {
                    continue;
                };
                for info in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(v)) = info {
                        let (mut vni, mut local, mut port) = (0, None, 0);
                        for a in v {
                            match a {
                                InfoVxlan::Id(i) => vni = *i,
                                InfoVxlan::Local(l) => local = Some(*l),
                                InfoVxlan::Port(p) => port = *p,
                                _ => {}
                            }
                        }
                        return Ok(Some((vni, local, port)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// `ip link set dev INDEX mtu MTU`
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(
            &|| format!("set link {index} mtu {mtu}"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    // ---- neighbours and forwarding entries ----

    fn neigh_dump(&mut self, family: AddressFamily) -> Result<Vec<NeighbourMessage>> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family;
        let replies = self.request(
            &|| "list neighbours".into(),
            RouteNetlinkMessage::GetNeighbour(msg),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    fn neigh_parts(n: &NeighbourMessage) -> (Option<IpAddr>, Option<[u8; 6]>) {
        let (mut ip, mut mac) = (None, None);
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    ip = Some(IpAddr::V4(*v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    ip = Some(IpAddr::V6(*v6))
                }
                // Bridge-family entries carry the destination as raw bytes.
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                    ip = match b.len() {
                        4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                        _ => None,
                    }
                }
                NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(l);
                    mac = Some(m);
                }
                _ => {}
            }
        }
        (ip, mac)
    }

    /// `ip neigh show dev INDEX nud permanent`: (address, MAC).
    pub fn neighbours(&mut self, index: u32) -> Result<Vec<(IpAddr, [u8; 6])>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            for n in self.neigh_dump(fam)? {
                if n.header.ifindex != index || n.header.state != NeighbourState::Permanent {
                    continue;
                }
                if let (Some(ip), Some(mac)) = Self::neigh_parts(&n) {
                    out.push((ip, mac));
                }
            }
        }
        Ok(out)
    }

    fn neigh_msg(
        family: AddressFamily,
        index: u32,
        ip: Option<IpAddr>,
        mac: Option<[u8; 6]>,
    ) -> NeighbourMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family;
        msg.header.ifindex = index;
        msg.header.state = NeighbourState::Permanent;
        if family == AddressFamily::Bridge {
            msg.header.flags = NeighbourFlags::Own;
        }
        if let Some(ip) = ip {
            msg.attributes
                .push(NeighbourAttribute::Destination(match ip {
                    IpAddr::V4(v) => NeighbourAddress::Inet(v),
                    IpAddr::V6(v) => NeighbourAddress::Inet6(v),
                }));
        }
        if let Some(mac) = mac {
            msg.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        msg
    }

    /// `ip neigh replace IP lladdr MAC dev INDEX nud permanent`
    pub fn set_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        self.request(
            &|| format!("set neighbour {ip}"),
            RouteNetlinkMessage::NewNeighbour(Self::neigh_msg(
                family(ip),
                index,
                Some(ip),
                Some(mac),
            )),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// `ip neigh del IP dev INDEX`
    pub fn delete_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<()> {
        self.request(
            &|| format!("delete neighbour {ip}"),
            RouteNetlinkMessage::DelNeighbour(Self::neigh_msg(family(ip), index, Some(ip), None)),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// `bridge fdb show dev INDEX` (permanent entries with a destination): (MAC, destination).
    pub fn fdb(&mut self, index: u32) -> Result<Vec<([u8; 6], IpAddr)>> {
        let mut out = Vec::new();
        for n in self.neigh_dump(AddressFamily::Bridge)? {
            if n.header.ifindex != index {
                continue;
            }
            if let (Some(ip), Some(mac)) = Self::neigh_parts(&n) {
                out.push((mac, ip));
            }
        }
        Ok(out)
    }

    /// `bridge fdb replace MAC dev INDEX dst IP self permanent`
    pub fn set_fdb(&mut self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        self.request(
            &|| format!("set fdb entry for {dst}"),
            RouteNetlinkMessage::NewNeighbour(Self::neigh_msg(
                AddressFamily::Bridge,
                index,
                Some(dst),
                Some(mac),
            )),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// `bridge fdb del MAC dev INDEX dst IP self`
    pub fn delete_fdb(&mut self, index: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        self.request(
            &|| format!("delete fdb entry for {dst}"),
            RouteNetlinkMessage::DelNeighbour(Self::neigh_msg(
                AddressFamily::Bridge,
                index,
                Some(dst),
                Some(mac),
            )),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    // ---- addresses ----

    /// `ip addr add ADDR/LEN dev INDEX [nodad]`
    pub fn add_address(&mut self, index: u32, addr: IpNet, nodad: bool) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = family(addr.addr());
        msg.header.prefix_len = addr.prefix_len();
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.addr()));
        msg.attributes.push(AddressAttribute::Address(addr.addr()));
        if nodad {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.request(
            &|| format!("add address {addr} to link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )?;
        Ok(())
    }

    /// `ip addr show dev INDEX` (all families).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IpNet>> {
        Ok(self
            .all_addresses()?
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, a)| a)
            .collect())
    }

    /// The MTU of the link that carries `addr`, if any link does.
    pub fn mtu_of_address(&mut self, addr: IpAddr) -> Result<Option<u32>> {
        let index = self
            .all_addresses()?
            .into_iter()
            .find(|(_, a)| a.addr() == addr)
            .map(|(i, _)| i);
        let Some(index) = index else { return Ok(None) };
        Ok(self
            .links()?
            .into_iter()
            .find(|l| l.index == index)
            .map(|l| l.mtu))
    }

    /// `ip addr show`: every address with its link index.
    pub fn all_addresses(&mut self) -> Result<Vec<(u32, IpNet)>> {
        let replies = self.request(
            &|| "list addresses".into(),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in &replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            let addr = a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = addr.or_else(|| {
                a.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = addr
                && let Ok(net) = IpNet::new(ip, a.header.prefix_len)
            {
                out.push((a.header.index, net));
            }
        }
        Ok(out)
    }
}

fn link_from(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: l.header.flags.contains(LinkFlags::Up),
        kind: None,
        link: None,
        link_netnsid: None,
    };
    for attr in &l.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(a);
                link.mac = Some(mac);
            }
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Link(i) => link.link = Some(*i),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(*id),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_messages_round_trip() {
        let routes = [
            Route::new("10.1.2.3/32".parse().unwrap())
                .dev(7)
                .scope(Scope::Link),
            Route::new("0.0.0.0/0".parse().unwrap())
                .via("169.254.1.1".parse().unwrap())
                .dev(2),
            Route::new("10.1.2.0/26".parse().unwrap())
                .kind(Kind::Blackhole)
                .protocol(80),
            Route::new("fd00::/122".parse().unwrap())
                .via("fe80::1".parse().unwrap())
                .dev(3)
                .onlink(),
        ];
        for r in routes {
            let back = Route::from_message(&r.to_message()).unwrap();
            assert_eq!(back, r);
        }
    }
}
