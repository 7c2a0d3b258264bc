//! BGP messages as calico-rs uses them (decoded form; see [`crate::wire`]).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// `AS_TRANS` (RFC 6793): stands in a 2-octet field for a 4-octet AS.
pub const AS_TRANS: u16 = 23456;

/// Largest message (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Address families (AFI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Afi {
    Ipv4,
    Ipv6,
}

impl Afi {
    pub fn code(self) -> u16 {
        match self {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
        }
    }

    pub fn from_code(code: u16) -> Option<Afi> {
        match code {
            1 => Some(Afi::Ipv4),
            2 => Some(Afi::Ipv6),
            _ => None,
        }
    }

    pub fn of(net: &IpNet) -> Afi {
        match net {
            IpNet::V4(_) => Afi::Ipv4,
            IpNet::V6(_) => Afi::Ipv6,
        }
    }
}

/// SAFI unicast, the only one calico-rs speaks.
pub const SAFI_UNICAST: u8 = 1;

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// OPEN (RFC 4271 §4.2), capabilities in the optional parameters (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The sender's AS: the 4-octet capability's value when present, else
    /// the 2-octet field.
    pub asn: u32,
    /// Hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The 4-octet AS capability's value, if sent.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Families announced with the multiprotocol capability (IPv4 unicast
    /// alone when none is, RFC 4760 §8).
    pub fn families(&self) -> Vec<Afi> {
        let mp: Vec<Afi> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } if *safi == SAFI_UNICAST => Some(*afi),
                _ => None,
            })
            .collect();
        if self
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
        {
            mp
        } else {
            vec![Afi::Ipv4]
        }
    }

    /// The graceful restart capability, if sent.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }
}

/// A capability (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760). `afi` is only IPv4 or IPv6 here; others are `Unknown`.
    Multiprotocol { afi: Afi, safi: u8 },
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 64 (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Anything else, kept as sent.
    Unknown { code: u8, value: Vec<u8> },
}

/// The graceful restart capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families whose forwarding state the sender preserves: (family, SAFI,
    /// F bit).
    pub families: Vec<(Afi, u8, bool)>,
}

/// UPDATE (RFC 4271 §4.3) with the multiprotocol attributes unpacked.
///
/// `announced` holds every reachable prefix (IPv4 NLRI field and
/// MP_REACH_NLRI), `withdrawn` every unreachable one (withdrawn routes field
/// and MP_UNREACH_NLRI). An UPDATE with neither and no attributes is an
/// End-of-RIB marker for IPv4 unicast; one whose only attribute is an empty
/// MP_UNREACH_NLRI is the marker for that family ([`Update::end_of_rib`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    pub withdrawn: Vec<IpNet>,
    pub announced: Vec<IpNet>,
    /// Path attributes of the announced prefixes (ignored when there are none).
    pub attributes: Attributes,
    /// Next hop of the IPv6 prefixes (MP_REACH_NLRI; the link-local address
    /// that may follow the global one is dropped).
    pub ipv6_next_hop: Option<IpAddr>,
    /// End-of-RIB marker for this family (RFC 4724 §2).
    pub end_of_rib: Option<Afi>,
    /// Set by the decoder when attributes were malformed and RFC 7606 says
    /// "treat-as-withdraw": the update's prefixes have been moved to
    /// `withdrawn`; the text says what was wrong.
    pub treated_as_withdraw: Option<String>,
}

impl Update {
    /// An End-of-RIB marker.
    pub fn end_of_rib(afi: Afi) -> Update {
        Update {
            end_of_rib: Some(afi),
            ..Update::default()
        }
    }
}

/// ORIGIN values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Igp,
    Egp,
    Incomplete,
}

/// An AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
}

/// Path attributes (RFC 4271 §5, RFC 1997, RFC 4456); unknown optional
/// transitive ones are kept and passed on with the partial bit set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub origin: Origin,
    /// 4-octet AS numbers (merged with AS4_PATH when the session is 2-octet).
    pub as_path: Vec<Segment>,
    /// NEXT_HOP of the IPv4 prefixes.
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// AGGREGATOR: (AS, address).
    pub aggregator: Option<(u32, Ipv4Addr)>,
    /// COMMUNITIES, each `AS << 16 | value`.
    pub communities: Vec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Other optional transitive attributes: (flags, type code, value).
    pub other: Vec<(u8, u8, Vec<u8>)>,
}

impl Attributes {
    /// Number of AS numbers in the path (a set counts as one, RFC 4271 §9.1.2.2).
    pub fn as_path_len(&self) -> usize {
        self.as_path
            .iter()
            .map(|s| match s {
                Segment::Set(_) => 1,
                Segment::Sequence(v) => v.len(),
            })
            .sum()
    }

    /// The first AS of the path (the neighbour AS), if any.
    pub fn first_as(&self) -> Option<u32> {
        match self.as_path.first()? {
            Segment::Sequence(v) => v.first().copied(),
            Segment::Set(_) => None,
        }
    }
}

/// NOTIFICATION (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, §6).
pub mod err {
    /// Subcode 0, "unspecific" (RFC 4271 §6.2 for a malformed optional
    /// parameter; any code).
    pub const UNSPECIFIC: u8 = 0;

    pub const MESSAGE_HEADER: u8 = 1;
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    pub const OPEN_MESSAGE: u8 = 2;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;

    pub const UPDATE_MESSAGE: u8 = 3;
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM_ERROR: u8 = 5;

    pub const CEASE: u8 = 6;
    /// Cease subcodes (RFC 4486).
    pub const MAXIMUM_NUMBER_OF_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;

    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.code {
            err::MESSAGE_HEADER => "message header error",
            err::OPEN_MESSAGE => "OPEN message error",
            err::UPDATE_MESSAGE => "UPDATE message error",
            err::HOLD_TIMER_EXPIRED => "hold timer expired",
            err::FSM_ERROR => "finite state machine error",
            err::CEASE => "cease",
            err::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH message error",
            _ => "error",
        };
        write!(f, "{what} (code {}, subcode {})", self.code, self.subcode)
    }
}

/// ROUTE-REFRESH (RFC 2918).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: Afi,
    pub safi: u8,
}
