//! The wire codec: bytes ⇄ [`Message`] (RFC 4271 §4).
//!
//! [`decode`] never panics, whatever the input: every read is bounds
//! checked and lengths are at most 16 bits wide, so no arithmetic on them
//! overflows. An error is the NOTIFICATION to send before closing the
//! session (RFC 4271 §6). A malformed path attribute does not end the
//! session where RFC 7606 allows it: either the attribute is discarded or
//! the update's prefixes are treated as withdrawn
//! ([`Update::treated_as_withdraw`]).
//!
//! [`encode`] writes what [`decode`] reads; [`pack`] splits a batch of
//! prefixes into UPDATEs that each fit [`MAX_MESSAGE_LEN`].

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::msg::{
    AS_TRANS, Afi, Attributes, Capability, GracefulRestart, MAX_MESSAGE_LEN, Message, Notification,
    Open, Origin, RouteRefresh, SAFI_UNICAST, Segment, Update, err,
};

/// Length of the message header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;

/// Message type codes.
mod kind {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Smallest message of each type (RFC 4271 §4, RFC 2918 §3).
const MIN_OPEN_LEN: usize = 29;
const MIN_UPDATE_LEN: usize = 23;
const MIN_NOTIFICATION_LEN: usize = 21;
const ROUTE_REFRESH_LEN: usize = 23;

/// Path attribute type codes.
mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;

    /// The codes this codec interprets (everything else is "unknown").
    pub fn known(code: u8) -> bool {
        matches!(code, 1..=10 | 14 | 15 | 17 | 18)
    }
}

/// Path attribute flags.
mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// Well-known attributes: not optional, transitive.
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
    pub const OPTIONAL_NON_TRANSITIVE: u8 = OPTIONAL;
}

/// Capability codes.
mod cap {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// OPEN optional parameter type: capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

/// AS_PATH segment types.
const SEGMENT_SET: u8 = 1;
const SEGMENT_SEQUENCE: u8 = 2;

/// Graceful restart capability bits.
const GR_RESTARTING: u16 = 0x8000;
const GR_TIME_MASK: u16 = 0x0fff;
const GR_FORWARDING: u8 = 0x80;

/// Per-session decoding/encoding context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH and
    /// AGGREGATOR carry 4-octet AS numbers.
    pub asn4: bool,
}

/// What went wrong decoding: the NOTIFICATION to send before closing (RFC 4271 §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{notification}: {reason}")]
pub struct DecodeError {
    pub notification: Notification,
    pub reason: String,
}

impl DecodeError {
    fn new(code: u8, subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            notification: Notification::new(code, subcode, data),
            reason: reason.into(),
        }
    }

    /// UPDATE error "malformed attribute list": the session reset of
    /// RFC 7606 for what cannot be parsed at all.
    fn malformed_list(reason: impl Into<String>) -> DecodeError {
        DecodeError::new(
            err::UPDATE_MESSAGE,
            err::MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
            reason,
        )
    }

    fn open(subcode: u8, data: Vec<u8>, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(err::OPEN_MESSAGE, subcode, data, reason)
    }
}

/// A message that cannot be encoded: a bug of the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed [`MAX_MESSAGE_LEN`] (or a length field).
    #[error("message too long: {0} octets (the limit is {MAX_MESSAGE_LEN})")]
    TooLong(usize),
    /// The message cannot be represented on the wire.
    #[error("cannot encode: {0}")]
    Invalid(String),
}

fn invalid(what: impl Into<String>) -> EncodeError {
    EncodeError::Invalid(what.into())
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// A cursor over a byte slice whose reads fail rather than panic.
#[derive(Debug, Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.0.split_first()?;
        self.0 = tail;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Big-endian unsigned number of up to 4 octets.
fn be_u32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | u32::from(b))
}

/// Decodes one message from the front of `buf`: Ok(None) if `buf` does not yet hold a whole
/// message; Ok(Some((message, bytes used))) otherwise.
///
/// The header is checked as soon as it has arrived (the marker even
/// sooner), so a stream that is not BGP fails without waiting for the
/// length it claims.
pub fn decode(buf: &[u8], ctx: &Context) -> Result<Option<(Message, usize)>, DecodeError> {
    if buf.iter().take(16).any(|&b| b != 0xff) {
        return Err(DecodeError::new(
            err::MESSAGE_HEADER,
            err::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "the header marker is not all ones",
        ));
    }
    let Some(&[hi, lo, ty]) = buf.get(16..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let bad_length = |reason: String| {
        DecodeError::new(
            err::MESSAGE_HEADER,
            err::BAD_MESSAGE_LENGTH,
            vec![hi, lo],
            reason,
        )
    };
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length(format!("message length {len}")));
    }
    let length_ok = match ty {
        kind::OPEN => len >= MIN_OPEN_LEN,
        kind::UPDATE => len >= MIN_UPDATE_LEN,
        kind::NOTIFICATION => len >= MIN_NOTIFICATION_LEN,
        kind::KEEPALIVE => len == HEADER_LEN,
        // Checked below, once the whole message is here: its error is
        // specific (RFC 7313 §5) and carries the message.
        kind::ROUTE_REFRESH => true,
        _ => {
            return Err(DecodeError::new(
                err::MESSAGE_HEADER,
                err::BAD_MESSAGE_TYPE,
                vec![ty],
                format!("message type {ty}"),
            ));
        }
    };
    if !length_ok {
        return Err(bad_length(format!("length {len} for message type {ty}")));
    }
    let Some(message) = buf.get(..len) else {
        return Ok(None);
    };
    let body = message.get(HEADER_LEN..).unwrap_or_default();
    let decoded = match ty {
        kind::OPEN => Message::Open(decode_open(body)?),
        kind::UPDATE => Message::Update(decode_update(body, ctx)?),
        kind::NOTIFICATION => Message::Notification(decode_notification(body)),
        kind::KEEPALIVE => Message::Keepalive,
        _ => decode_route_refresh(message)?,
    };
    Ok(Some((decoded, len)))
}

fn decode_notification(body: &[u8]) -> Notification {
    let mut r = Reader(body);
    let code = r.u8().unwrap_or_default();
    let subcode = r.u8().unwrap_or_default();
    Notification::new(code, subcode, r.rest().to_vec())
}

/// ROUTE-REFRESH (RFC 2918, RFC 7313). `message` includes the header.
fn decode_route_refresh(message: &[u8]) -> Result<Message, DecodeError> {
    if message.len() != ROUTE_REFRESH_LEN {
        // RFC 7313 §5: the data is the complete message (cut to what a
        // NOTIFICATION can carry).
        let data = message
            .iter()
            .take(MAX_MESSAGE_LEN - MIN_NOTIFICATION_LEN)
            .copied()
            .collect();
        return Err(DecodeError::new(
            err::ROUTE_REFRESH_MESSAGE,
            err::INVALID_MESSAGE_LENGTH,
            data,
            format!("ROUTE-REFRESH of {} octets", message.len()),
        ));
    }
    let mut r = Reader(message.get(HEADER_LEN..).unwrap_or_default());
    let afi = r.u16().unwrap_or_default();
    // The reserved octet is the message subtype of RFC 7313 (enhanced
    // route refresh, which calico-rs does not announce): ignored.
    let _subtype = r.u8();
    let safi = r.u8().unwrap_or_default();
    Ok(match Afi::from_code(afi) {
        Some(afi) => Message::RouteRefresh(RouteRefresh { afi, safi }),
        // RFC 2918 §4: a request for a family that was not advertised is
        // ignored. `RouteRefresh` cannot name an unknown family, so the
        // message decodes as a KEEPALIVE, the message that asks nothing
        // (its only effect, restarting the hold timer, is what any message
        // received does).
        None => Message::Keepalive,
    })
}

fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let mut r = Reader(body);
    let (Some(version), Some(as2), Some(hold_time), Some(id), Some(params_len)) =
        (r.u8(), r.u16(), r.u16(), r.u32(), r.u8())
    else {
        // Unreachable: the header check guarantees 10 octets.
        return Err(DecodeError::new(
            err::MESSAGE_HEADER,
            err::BAD_MESSAGE_LENGTH,
            Vec::new(),
            "OPEN too short",
        ));
    };
    if version != 4 {
        return Err(DecodeError::open(
            err::UNSUPPORTED_VERSION,
            vec![0, 4],
            format!("BGP version {version}"),
        ));
    }
    let params = match r.take(usize::from(params_len)) {
        Some(p) if r.is_empty() => p,
        _ => {
            return Err(DecodeError::open(
                err::UNSPECIFIC,
                Vec::new(),
                format!(
                    "optional parameters length {params_len} for {} octets",
                    body.len().saturating_sub(10)
                ),
            ));
        }
    };
    if hold_time == 1 || hold_time == 2 {
        return Err(DecodeError::open(
            err::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            format!("hold time {hold_time}"),
        ));
    }
    if id == 0 {
        return Err(DecodeError::open(
            err::BAD_BGP_IDENTIFIER,
            Vec::new(),
            "BGP identifier 0.0.0.0",
        ));
    }
    let mut capabilities = Vec::new();
    let mut params = Reader(params);
    while !params.is_empty() {
        let (Some(ty), Some(len)) = (params.u8(), params.u8()) else {
            return Err(DecodeError::open(
                err::UNSPECIFIC,
                Vec::new(),
                "truncated optional parameter",
            ));
        };
        let Some(value) = params.take(usize::from(len)) else {
            return Err(DecodeError::open(
                err::UNSPECIFIC,
                Vec::new(),
                format!("optional parameter {ty} of length {len} overruns the parameters"),
            ));
        };
        if ty != PARAM_CAPABILITIES {
            return Err(DecodeError::open(
                err::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
                format!("optional parameter type {ty}"),
            ));
        }
        let mut caps = Reader(value);
        while !caps.is_empty() {
            let (Some(code), Some(len)) = (caps.u8(), caps.u8()) else {
                return Err(DecodeError::open(
                    err::UNSPECIFIC,
                    Vec::new(),
                    "truncated capability",
                ));
            };
            let Some(value) = caps.take(usize::from(len)) else {
                return Err(DecodeError::open(
                    err::UNSPECIFIC,
                    Vec::new(),
                    format!("capability {code} of length {len} overruns its parameter"),
                ));
            };
            capabilities.push(decode_capability(code, value));
        }
    }
    let mut open = Open {
        asn: u32::from(as2),
        hold_time,
        router_id: Ipv4Addr::from(id),
        capabilities,
    };
    if let Some(asn) = open.four_octet_as() {
        open.asn = asn;
    }
    Ok(open)
}

/// One capability; anything this codec does not understand (including a
/// known code with the wrong length) is kept as `Unknown`.
fn decode_capability(code: u8, value: &[u8]) -> Capability {
    match (code, value) {
        (cap::MULTIPROTOCOL, &[a, b, _, safi]) => {
            match Afi::from_code(u16::from_be_bytes([a, b])) {
                Some(afi) => Capability::Multiprotocol { afi, safi },
                None => Capability::Unknown {
                    code,
                    value: value.to_vec(),
                },
            }
        }
        (cap::ROUTE_REFRESH, []) => Capability::RouteRefresh,
        (cap::GRACEFUL_RESTART, &[hi, lo, ref tuples @ ..]) => {
            let head = u16::from_be_bytes([hi, lo]);
            // Tuples of unknown families are skipped, and so is a
            // trailing partial tuple.
            let families = tuples
                .chunks_exact(4)
                .filter_map(|t| match *t {
                    [a, b, safi, flags] => Afi::from_code(u16::from_be_bytes([a, b]))
                        .map(|afi| (afi, safi, flags & GR_FORWARDING != 0)),
                    _ => None,
                })
                .collect();
            Capability::GracefulRestart(GracefulRestart {
                restarting: head & GR_RESTARTING != 0,
                restart_time: head & GR_TIME_MASK,
                families,
            })
        }
        (cap::FOUR_OCTET_AS, &[a, b, c, d]) => {
            Capability::FourOctetAs(u32::from_be_bytes([a, b, c, d]))
        }
        _ => Capability::Unknown {
            code,
            value: value.to_vec(),
        },
    }
}

/// Why a run of prefixes could not be parsed.
enum NlriError {
    /// A prefix's octets run past the end of the field.
    Overrun,
    /// A prefix length longer than the address.
    BadLength(u8),
}

impl NlriError {
    fn into_decode_error(self, field: &str) -> DecodeError {
        match self {
            NlriError::Overrun => {
                DecodeError::malformed_list(format!("a prefix overruns the {field}"))
            }
            NlriError::BadLength(bits) => DecodeError::new(
                err::UPDATE_MESSAGE,
                err::INVALID_NETWORK_FIELD,
                Vec::new(),
                format!("prefix length {bits} in the {field}"),
            ),
        }
    }
}

/// Prefixes in the RFC 4271 §4.3 encoding (length in bits, then as few
/// octets as hold them); bits past the length are cleared.
fn decode_prefixes(field: &[u8], afi: Afi) -> Result<Vec<IpNet>, NlriError> {
    let max_bits = match afi {
        Afi::Ipv4 => 32,
        Afi::Ipv6 => 128,
    };
    let mut r = Reader(field);
    let mut out = Vec::new();
    while let Some(bits) = r.u8() {
        if bits > max_bits {
            return Err(NlriError::BadLength(bits));
        }
        let octets = r
            .take(usize::from(bits).div_ceil(8))
            .ok_or(NlriError::Overrun)?;
        let net = match afi {
            Afi::Ipv4 => {
                let mut a = [0u8; 4];
                if octets.len() > a.len() {
                    return Err(NlriError::BadLength(bits));
                }
                a.iter_mut().zip(octets).for_each(|(d, s)| *d = *s);
                Ipv4Net::new(Ipv4Addr::from(a), bits).map(|n| IpNet::V4(n.trunc()))
            }
            Afi::Ipv6 => {
                let mut a = [0u8; 16];
                if octets.len() > a.len() {
                    return Err(NlriError::BadLength(bits));
                }
                a.iter_mut().zip(octets).for_each(|(d, s)| *d = *s);
                Ipv6Net::new(Ipv6Addr::from(a), bits).map(|n| IpNet::V6(n.trunc()))
            }
        };
        out.push(net.map_err(|_| NlriError::BadLength(bits))?);
    }
    Ok(out)
}

/// AS_PATH / AS4_PATH value; None if malformed (RFC 7606 §7.2: unknown
/// segment type, zero-length segment, overrun).
fn decode_as_path(value: &[u8], four_octet: bool) -> Option<Vec<Segment>> {
    let width = if four_octet { 4 } else { 2 };
    let mut r = Reader(value);
    let mut path = Vec::new();
    while !r.is_empty() {
        let [ty, count] = r.array()?;
        if count == 0 {
            return None;
        }
        let asns: Vec<u32> = r
            .take(usize::from(count) * width)?
            .chunks_exact(width)
            .map(be_u32)
            .collect();
        path.push(match ty {
            SEGMENT_SET => Segment::Set(asns),
            SEGMENT_SEQUENCE => Segment::Sequence(asns),
            _ => return None,
        });
    }
    Some(path)
}

/// Number of AS numbers in a path for RFC 6793 §4.2.3 (a set counts as one).
fn path_len(path: &[Segment]) -> usize {
    path.iter()
        .map(|s| match s {
            Segment::Set(_) => 1,
            Segment::Sequence(v) => v.len(),
        })
        .sum()
}

/// RFC 6793 §4.2.3: rebuilds the 4-octet path from AS_PATH and AS4_PATH.
fn merge_as4_path(as_path: &[Segment], as4_path: Vec<Segment>) -> Vec<Segment> {
    let (n, n4) = (path_len(as_path), path_len(&as4_path));
    if n < n4 {
        return as_path.to_vec();
    }
    let mut need = n - n4;
    let mut out = Vec::new();
    for segment in as_path {
        if need == 0 {
            break;
        }
        match segment {
            Segment::Set(v) => {
                out.push(Segment::Set(v.clone()));
                need -= 1;
            }
            Segment::Sequence(v) => {
                let k = need.min(v.len());
                out.push(Segment::Sequence(v.iter().take(k).copied().collect()));
                need -= k;
            }
        }
    }
    // Joined into one sequence where the two parts meet, if that fits a
    // segment (so that the path encodes as it decoded).
    let mut rest = as4_path.into_iter();
    if let Some(first) = rest.next() {
        match (out.last_mut(), first) {
            (Some(Segment::Sequence(last)), Segment::Sequence(next))
                if last.len() + next.len() <= 255 =>
            {
                last.extend(next);
            }
            (_, first) => out.push(first),
        }
    }
    out.extend(rest);
    out
}

/// An MP_REACH_NLRI of a family this codec speaks.
struct MpReach {
    next_hop: IpAddr,
    prefixes: Vec<IpNet>,
}

/// The path attributes field, parsed (RFC 4271 §4.3, RFC 7606).
#[derive(Default)]
struct ParsedAttributes {
    attrs: Attributes,
    has_origin: bool,
    has_as_path: bool,
    has_next_hop: bool,
    mp_reach: Option<MpReach>,
    mp_unreach: Option<(Afi, Vec<IpNet>)>,
    as4_path: Option<Vec<Segment>>,
    as4_aggregator: Option<(u32, Ipv4Addr)>,
    /// Attributes in the field (before duplicates are discarded).
    count: usize,
    /// Type codes already seen (the first of duplicates wins).
    seen: HashSet<u8>,
    /// Why the update is to be treated as withdrawn (the first reason).
    withdraw: Option<String>,
}

impl ParsedAttributes {
    fn treat_as_withdraw(&mut self, reason: impl Into<String>) {
        if self.withdraw.is_none() {
            self.withdraw = Some(reason.into());
        }
    }

    /// One attribute: Ok(Some(reason)) if the update is to be treated as
    /// withdrawn. `raw` is the whole attribute (flags, type, length,
    /// value), the data of the NOTIFICATION for an unrecognized well-known
    /// attribute.
    fn attribute(
        &mut self,
        flags: u8,
        code: u8,
        value: &[u8],
        raw: &[u8],
        ctx: &Context,
    ) -> Result<Option<String>, DecodeError> {
        // RFC 7606 §3c: wrong optional/transitive bits make the attribute
        // malformed; what that means depends on the attribute.
        let class = flags & flag::OPTIONAL_TRANSITIVE;
        let want = match code {
            attr::ORIGIN
            | attr::AS_PATH
            | attr::NEXT_HOP
            | attr::LOCAL_PREF
            | attr::ATOMIC_AGGREGATE => flag::WELL_KNOWN,
            attr::MED
            | attr::ORIGINATOR_ID
            | attr::CLUSTER_LIST
            | attr::MP_REACH_NLRI
            | attr::MP_UNREACH_NLRI => flag::OPTIONAL_NON_TRANSITIVE,
            attr::AGGREGATOR | attr::COMMUNITIES | attr::AS4_PATH | attr::AS4_AGGREGATOR => {
                flag::OPTIONAL_TRANSITIVE
            }
            _ => class,
        };
        if class != want {
            let reason = format!("attribute {code} with flags {flags:#04x}");
            return match code {
                attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => {
                    Err(DecodeError::malformed_list(reason))
                }
                // Attribute discard (RFC 7606 §7.7, RFC 6793 §6).
                attr::AGGREGATOR | attr::AS4_PATH | attr::AS4_AGGREGATOR => Ok(None),
                _ => Ok(Some(reason)),
            };
        }
        let wrong_length = || Some(format!("attribute {code} of {} octets", value.len()));
        match code {
            attr::ORIGIN => {
                self.attrs.origin = match value {
                    [0] => Origin::Igp,
                    [1] => Origin::Egp,
                    [2] => Origin::Incomplete,
                    _ => return Ok(Some(format!("ORIGIN {value:?}"))),
                };
                self.has_origin = true;
            }
            attr::AS_PATH => match decode_as_path(value, ctx.asn4) {
                Some(path) => {
                    self.attrs.as_path = path;
                    self.has_as_path = true;
                }
                None => return Ok(Some("malformed AS_PATH".to_string())),
            },
            attr::NEXT_HOP => match decode_ipv4(value) {
                Some(nh) => {
                    self.attrs.next_hop = Some(nh);
                    self.has_next_hop = true;
                }
                None => return Ok(wrong_length()),
            },
            attr::MED => match *value {
                [a, b, c, d] => self.attrs.med = Some(u32::from_be_bytes([a, b, c, d])),
                _ => return Ok(wrong_length()),
            },
            attr::LOCAL_PREF => match *value {
                [a, b, c, d] => self.attrs.local_pref = Some(u32::from_be_bytes([a, b, c, d])),
                _ => return Ok(wrong_length()),
            },
            // RFC 7606 §7.6: a wrong length means attribute discard.
            attr::ATOMIC_AGGREGATE => self.attrs.atomic_aggregate = value.is_empty(),
            // RFC 7606 §7.7: attribute discard.
            attr::AGGREGATOR => {
                self.attrs.aggregator = match (ctx.asn4, value) {
                    (true, &[a, b, c, d, ref ip @ ..]) => {
                        decode_ipv4(ip).map(|ip| (u32::from_be_bytes([a, b, c, d]), ip))
                    }
                    (false, &[a, b, ref ip @ ..]) => {
                        decode_ipv4(ip).map(|ip| (u32::from(u16::from_be_bytes([a, b])), ip))
                    }
                    _ => None,
                };
            }
            // RFC 7606 §7.8, §7.10: the length must be a non-zero multiple
            // of 4.
            attr::COMMUNITIES => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    return Ok(wrong_length());
                }
                self.attrs.communities = value.chunks_exact(4).map(be_u32).collect();
            }
            attr::CLUSTER_LIST => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    return Ok(wrong_length());
                }
                self.attrs.cluster_list = value
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::from(be_u32(c)))
                    .collect();
            }
            attr::ORIGINATOR_ID => match decode_ipv4(value) {
                Some(id) => self.attrs.originator_id = Some(id),
                None => return Ok(wrong_length()),
            },
            attr::MP_REACH_NLRI => self.mp_reach = decode_mp_reach(value)?,
            attr::MP_UNREACH_NLRI => self.mp_unreach = decode_mp_unreach(value)?,
            // RFC 6793 §6: a malformed AS4_PATH or AS4_AGGREGATOR is
            // discarded; §4.1: between two 4-octet speakers they are
            // ignored.
            attr::AS4_PATH if !ctx.asn4 => self.as4_path = decode_as_path(value, true),
            attr::AS4_AGGREGATOR if !ctx.asn4 => {
                self.as4_aggregator = match *value {
                    [a, b, c, d, ref ip @ ..] => {
                        decode_ipv4(ip).map(|ip| (u32::from_be_bytes([a, b, c, d]), ip))
                    }
                    _ => None,
                };
            }
            attr::AS4_PATH | attr::AS4_AGGREGATOR => {}
            _ if flags & flag::OPTIONAL == 0 => {
                return Err(DecodeError::new(
                    err::UPDATE_MESSAGE,
                    err::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    raw.to_vec(),
                    format!("unrecognized well-known attribute {code}"),
                ));
            }
            _ if flags & flag::TRANSITIVE != 0 => {
                // The extended length bit is encoding, not meaning.
                let kept = flags & (flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL);
                self.attrs.other.push((kept, code, value.to_vec()));
            }
            // Unrecognized optional non-transitive: quietly ignored.
            _ => {}
        }
        Ok(None)
    }

    /// RFC 6793 §4.2.3, for a session without the 4-octet capability.
    fn merge_as4(&mut self) {
        let as4_path = self.as4_path.take();
        if let Some(as4_aggregator) = self.as4_aggregator.take() {
            match self.attrs.aggregator {
                Some((asn, _)) if asn == u32::from(AS_TRANS) => {
                    self.attrs.aggregator = Some(as4_aggregator);
                }
                // The aggregator was a 2-octet speaker: the AS4 attributes
                // are stale, both are ignored.
                Some(_) => return,
                None => {}
            }
        }
        if let Some(as4_path) = as4_path
            && self.has_as_path
        {
            self.attrs.as_path = merge_as4_path(&self.attrs.as_path, as4_path);
        }
    }
}

fn decode_ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    match *bytes {
        [a, b, c, d] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

/// MP_REACH_NLRI (RFC 4760 §3): None for a family this codec does not
/// speak; malformed is a session reset (RFC 7606 §7.11).
fn decode_mp_reach(value: &[u8]) -> Result<Option<MpReach>, DecodeError> {
    let mut r = Reader(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(DecodeError::malformed_list(format!(
            "MP_REACH_NLRI of {} octets",
            value.len()
        )));
    };
    let Some(family) = Afi::from_code(afi).filter(|_| safi == SAFI_UNICAST) else {
        return Ok(None);
    };
    let Some(next_hop_len) = r.u8() else {
        return Err(DecodeError::malformed_list("MP_REACH_NLRI truncated"));
    };
    let Some(next_hop) = r.take(usize::from(next_hop_len)) else {
        return Err(DecodeError::malformed_list(format!(
            "MP_REACH_NLRI next hop length {next_hop_len} overruns the attribute"
        )));
    };
    let next_hop = match (family, next_hop.len()) {
        (Afi::Ipv4, 4) => decode_ipv4(next_hop).map(IpAddr::V4),
        // 32 octets: global then link-local address; the latter is dropped.
        (Afi::Ipv6, 16 | 32) => next_hop
            .get(..16)
            .and_then(|g| <[u8; 16]>::try_from(g).ok())
            .map(|g| IpAddr::V6(Ipv6Addr::from(g))),
        _ => None,
    };
    let Some(next_hop) = next_hop else {
        return Err(DecodeError::malformed_list(format!(
            "MP_REACH_NLRI next hop of {next_hop_len} octets for AFI {afi}"
        )));
    };
    if r.u8().is_none() {
        return Err(DecodeError::malformed_list(
            "MP_REACH_NLRI without its reserved octet",
        ));
    }
    let prefixes =
        decode_prefixes(r.rest(), family).map_err(|e| e.into_decode_error("MP_REACH_NLRI"))?;
    Ok(Some(MpReach { next_hop, prefixes }))
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
fn decode_mp_unreach(value: &[u8]) -> Result<Option<(Afi, Vec<IpNet>)>, DecodeError> {
    let mut r = Reader(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(DecodeError::malformed_list(format!(
            "MP_UNREACH_NLRI of {} octets",
            value.len()
        )));
    };
    let Some(family) = Afi::from_code(afi).filter(|_| safi == SAFI_UNICAST) else {
        return Ok(None);
    };
    let prefixes =
        decode_prefixes(r.rest(), family).map_err(|e| e.into_decode_error("MP_UNREACH_NLRI"))?;
    Ok(Some((family, prefixes)))
}

/// The path attributes field. Errors are session resets; what RFC 7606
/// lets through is recorded in `withdraw`.
fn decode_attributes(field: &[u8], ctx: &Context) -> Result<ParsedAttributes, DecodeError> {
    let mut p = ParsedAttributes::default();
    let mut r = Reader(field);
    while !r.is_empty() {
        let start = r.0;
        // RFC 7606 §4: an attribute overrunning the field (or too little
        // left for a header) means treat-as-withdraw, the total attribute
        // length still locating the NLRI. An MP attribute that cannot be
        // read is a session reset (its prefixes are unknown).
        let Some([flags, code]) = r.array() else {
            p.treat_as_withdraw("truncated path attribute header");
            break;
        };
        let len = if flags & flag::EXTENDED_LENGTH != 0 {
            r.u16().map(usize::from)
        } else {
            r.u8().map(usize::from)
        };
        let value = len.and_then(|len| r.take(len));
        let Some(value) = value else {
            if code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI {
                return Err(DecodeError::malformed_list(format!(
                    "attribute {code} overruns the path attributes"
                )));
            }
            p.treat_as_withdraw(format!("attribute {code} overruns the path attributes"));
            break;
        };
        let raw = start.get(..start.len() - r.len()).unwrap_or_default();
        p.count += 1;
        if !p.seen.insert(code) {
            // RFC 7606 §3g.
            if code == attr::MP_REACH_NLRI || code == attr::MP_UNREACH_NLRI {
                return Err(DecodeError::malformed_list(format!(
                    "attribute {code} appears twice"
                )));
            }
            continue;
        }
        if let Some(reason) = p.attribute(flags, code, value, raw, ctx)? {
            p.treat_as_withdraw(reason);
        }
    }
    Ok(p)
}

fn decode_update(body: &[u8], ctx: &Context) -> Result<Update, DecodeError> {
    let mut r = Reader(body);
    let withdrawn_field = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or_else(|| {
            DecodeError::malformed_list("withdrawn routes length overruns the message")
        })?;
    let attributes_field = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .ok_or_else(|| {
            DecodeError::malformed_list("path attributes length overruns the message")
        })?;
    let nlri_field = r.rest();

    let mut withdrawn = decode_prefixes(withdrawn_field, Afi::Ipv4)
        .map_err(|e| e.into_decode_error("withdrawn routes"))?;
    let mut announced =
        decode_prefixes(nlri_field, Afi::Ipv4).map_err(|e| e.into_decode_error("NLRI"))?;
    let mut p = decode_attributes(attributes_field, ctx)?;
    // Canonical order, the order they are written in.
    p.attrs.other.sort_by_key(|(_, code, _)| *code);

    // End-of-RIB (RFC 4724 §2): nothing else, not even a broken attribute.
    if withdrawn.is_empty() && announced.is_empty() && p.withdraw.is_none() {
        match (p.count, &p.mp_unreach) {
            (0, _) => return Ok(Update::end_of_rib(Afi::Ipv4)),
            (1, Some((afi, prefixes))) if prefixes.is_empty() => {
                return Ok(Update::end_of_rib(*afi));
            }
            _ => {}
        }
    }

    if !ctx.asn4 {
        p.merge_as4();
    }
    let nlri_present = !announced.is_empty();
    let mut ipv6_next_hop = None;
    if let Some(mp) = p.mp_reach.take()
        && !mp.prefixes.is_empty()
    {
        match mp.next_hop {
            // RFC 4760 §3: the NEXT_HOP attribute is for the NLRI field;
            // when that is empty the MP next hop is the one.
            IpAddr::V4(nh) if !nlri_present => p.attrs.next_hop = Some(nh),
            // Both: `Attributes` has one IPv4 next hop, NEXT_HOP's.
            IpAddr::V4(_) => {}
            IpAddr::V6(_) => ipv6_next_hop = Some(mp.next_hop),
        }
        announced.extend(mp.prefixes);
    }
    if let Some((_, prefixes)) = p.mp_unreach.take() {
        withdrawn.extend(prefixes);
    }

    if !announced.is_empty() {
        // RFC 7606 §3d: missing well-known mandatory attributes.
        if !p.has_origin {
            p.treat_as_withdraw("missing ORIGIN");
        }
        if !p.has_as_path {
            p.treat_as_withdraw("missing AS_PATH");
        }
        if nlri_present && !p.has_next_hop {
            p.treat_as_withdraw("missing NEXT_HOP");
        }
    }

    if let Some(reason) = p.withdraw {
        withdrawn.extend(announced);
        return Ok(Update {
            withdrawn,
            treated_as_withdraw: Some(reason),
            ..Update::default()
        });
    }
    if announced.is_empty() {
        return Ok(Update {
            withdrawn,
            ..Update::default()
        });
    }
    // RFC 4271 §4.3: a prefix both withdrawn and announced is announced.
    let announced_set: HashSet<&IpNet> = announced.iter().collect();
    withdrawn.retain(|n| !announced_set.contains(n));
    Ok(Update {
        withdrawn,
        announced,
        attributes: p.attrs,
        ipv6_next_hop,
        end_of_rib: None,
        treated_as_withdraw: None,
    })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Encodes one message. Updates must fit MAX_MESSAGE_LEN (use [`pack`]); an
/// Update too large is a bug of the caller: an error, not a panic.
///
/// Of an [`Update`], `treated_as_withdraw` is ignored; `attributes` and
/// `ipv6_next_hop` are written only when it announces prefixes. An update
/// with no prefixes must be an End-of-RIB marker ([`Update::end_of_rib`]).
pub fn encode(msg: &Message, ctx: &Context) -> Result<Vec<u8>, EncodeError> {
    match msg {
        Message::Open(open) => frame(kind::OPEN, &encode_open(open)?),
        Message::Update(update) => frame(kind::UPDATE, &encode_update(update, ctx)?),
        Message::Notification(n) => {
            let mut body = vec![n.code, n.subcode];
            body.extend_from_slice(&n.data);
            frame(kind::NOTIFICATION, &body)
        }
        Message::Keepalive => frame(kind::KEEPALIVE, &[]),
        Message::RouteRefresh(rr) => {
            let [a, b] = rr.afi.code().to_be_bytes();
            frame(kind::ROUTE_REFRESH, &[a, b, 0, rr.safi])
        }
    }
}

/// Header + body, at most [`MAX_MESSAGE_LEN`].
fn frame(ty: u8, body: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let len = HEADER_LEN + body.len();
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong(len));
    }
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong(len))?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&len16.to_be_bytes());
    out.push(ty);
    out.extend_from_slice(body);
    Ok(out)
}

fn encode_open(open: &Open) -> Result<Vec<u8>, EncodeError> {
    let mut caps = Vec::new();
    for c in &open.capabilities {
        encode_capability(c, &mut caps)?;
    }
    let mut body = vec![4];
    body.extend_from_slice(&u16::try_from(open.asn).unwrap_or(AS_TRANS).to_be_bytes());
    body.extend_from_slice(&open.hold_time.to_be_bytes());
    body.extend_from_slice(&open.router_id.octets());
    if caps.is_empty() {
        body.push(0);
    } else {
        // All capabilities in one optional parameter.
        let too_long = || {
            invalid(format!(
                "{} octets of capabilities (at most 253)",
                caps.len()
            ))
        };
        let params_len = u8::try_from(caps.len() + 2).map_err(|_| too_long())?;
        let param_len = u8::try_from(caps.len()).map_err(|_| too_long())?;
        body.extend_from_slice(&[params_len, PARAM_CAPABILITIES, param_len]);
        body.extend_from_slice(&caps);
    }
    Ok(body)
}

fn encode_capability(c: &Capability, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (code, value) = match c {
        Capability::Multiprotocol { afi, safi } => {
            let [a, b] = afi.code().to_be_bytes();
            (cap::MULTIPROTOCOL, vec![a, b, 0, *safi])
        }
        Capability::RouteRefresh => (cap::ROUTE_REFRESH, Vec::new()),
        Capability::GracefulRestart(gr) => {
            if gr.restart_time > GR_TIME_MASK {
                return Err(invalid(format!(
                    "graceful restart time {} (at most 4095)",
                    gr.restart_time
                )));
            }
            let head = gr.restart_time | if gr.restarting { GR_RESTARTING } else { 0 };
            let mut v = head.to_be_bytes().to_vec();
            for (afi, safi, forwarding) in &gr.families {
                v.extend_from_slice(&afi.code().to_be_bytes());
                v.push(*safi);
                v.push(if *forwarding { GR_FORWARDING } else { 0 });
            }
            (cap::GRACEFUL_RESTART, v)
        }
        Capability::FourOctetAs(asn) => (cap::FOUR_OCTET_AS, asn.to_be_bytes().to_vec()),
        Capability::Unknown { code, value } => (*code, value.clone()),
    };
    let len = u8::try_from(value.len())
        .map_err(|_| invalid(format!("capability {code} of {} octets", value.len())))?;
    out.extend_from_slice(&[code, len]);
    out.extend_from_slice(&value);
    Ok(())
}

/// Octets of a prefix in NLRI encoding.
fn prefix_wire_len(net: &IpNet) -> usize {
    1 + usize::from(net.prefix_len()).div_ceil(8)
}

fn encode_prefix(net: &IpNet, out: &mut Vec<u8>) {
    let bits = net.prefix_len();
    let n = usize::from(bits).div_ceil(8);
    out.push(bits);
    match net.trunc() {
        IpNet::V4(v4) => out.extend(v4.addr().octets().iter().take(n)),
        IpNet::V6(v6) => out.extend(v6.addr().octets().iter().take(n)),
    }
}

/// Octets of an attribute header for a value of `len` octets.
fn attr_header_len(len: usize) -> usize {
    if len > 255 { 4 } else { 3 }
}

/// A path attribute to write: (type code, flags, value).
type RawAttribute = (u8, u8, Vec<u8>);

fn attributes_wire_len(attrs: &[RawAttribute]) -> usize {
    attrs
        .iter()
        .map(|(_, _, v)| attr_header_len(v.len()) + v.len())
        .sum()
}

fn write_attribute(
    out: &mut Vec<u8>,
    (code, flags, value): &RawAttribute,
) -> Result<(), EncodeError> {
    let flags = flags & !flag::EXTENDED_LENGTH & 0xf0;
    if let Ok(len) = u8::try_from(value.len()) {
        out.extend_from_slice(&[flags, *code, len]);
    } else {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::TooLong(value.len()))?;
        out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, *code]);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(value);
    Ok(())
}

/// AS_PATH value with `four_octet` or 2-octet AS numbers (those above
/// 65535 then written as AS_TRANS); and whether any was. A sequence longer
/// than 255 is split; an empty segment is left out.
fn encode_as_path(path: &[Segment], four_octet: bool) -> Result<(Vec<u8>, bool), EncodeError> {
    let mut out = Vec::new();
    let mut substituted = false;
    for segment in path {
        let (ty, asns) = match segment {
            Segment::Set(v) if v.len() > 255 => {
                return Err(invalid(format!("AS_SET of {} AS numbers", v.len())));
            }
            Segment::Set(v) => (SEGMENT_SET, v),
            Segment::Sequence(v) => (SEGMENT_SEQUENCE, v),
        };
        for chunk in asns.chunks(255) {
            let count = u8::try_from(chunk.len()).map_err(|_| invalid("segment too long"))?;
            out.extend_from_slice(&[ty, count]);
            for &asn in chunk {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    let two = u16::try_from(asn).unwrap_or_else(|_| {
                        substituted = true;
                        AS_TRANS
                    });
                    out.extend_from_slice(&two.to_be_bytes());
                }
            }
        }
    }
    Ok((out, substituted))
}

/// The path attributes of `a` other than the multiprotocol ones.
fn path_attributes(a: &Attributes, ctx: &Context) -> Result<Vec<RawAttribute>, EncodeError> {
    let mut out: Vec<RawAttribute> = Vec::new();
    let origin = match a.origin {
        Origin::Igp => 0,
        Origin::Egp => 1,
        Origin::Incomplete => 2,
    };
    out.push((attr::ORIGIN, flag::WELL_KNOWN, vec![origin]));
    let (as_path, substituted) = encode_as_path(&a.as_path, ctx.asn4)?;
    out.push((attr::AS_PATH, flag::WELL_KNOWN, as_path));
    if substituted {
        let (as4_path, _) = encode_as_path(&a.as_path, true)?;
        out.push((attr::AS4_PATH, flag::OPTIONAL_TRANSITIVE, as4_path));
    }
    if let Some(nh) = a.next_hop {
        out.push((attr::NEXT_HOP, flag::WELL_KNOWN, nh.octets().to_vec()));
    }
    if let Some(med) = a.med {
        out.push((
            attr::MED,
            flag::OPTIONAL_NON_TRANSITIVE,
            med.to_be_bytes().to_vec(),
        ));
    }
    if let Some(lp) = a.local_pref {
        out.push((
            attr::LOCAL_PREF,
            flag::WELL_KNOWN,
            lp.to_be_bytes().to_vec(),
        ));
    }
    if a.atomic_aggregate {
        out.push((attr::ATOMIC_AGGREGATE, flag::WELL_KNOWN, Vec::new()));
    }
    if let Some((asn, ip)) = a.aggregator {
        let mut v = Vec::with_capacity(8);
        if ctx.asn4 {
            v.extend_from_slice(&asn.to_be_bytes());
        } else {
            let two = u16::try_from(asn).unwrap_or(AS_TRANS);
            v.extend_from_slice(&two.to_be_bytes());
            if u16::try_from(asn).is_err() {
                let mut v4 = asn.to_be_bytes().to_vec();
                v4.extend_from_slice(&ip.octets());
                out.push((attr::AS4_AGGREGATOR, flag::OPTIONAL_TRANSITIVE, v4));
            }
        }
        v.extend_from_slice(&ip.octets());
        out.push((attr::AGGREGATOR, flag::OPTIONAL_TRANSITIVE, v));
    }
    if !a.communities.is_empty() {
        let v = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        out.push((attr::COMMUNITIES, flag::OPTIONAL_TRANSITIVE, v));
    }
    if let Some(id) = a.originator_id {
        out.push((
            attr::ORIGINATOR_ID,
            flag::OPTIONAL_NON_TRANSITIVE,
            id.octets().to_vec(),
        ));
    }
    if !a.cluster_list.is_empty() {
        let v = a.cluster_list.iter().flat_map(|c| c.octets()).collect();
        out.push((attr::CLUSTER_LIST, flag::OPTIONAL_NON_TRANSITIVE, v));
    }
    for (_, code, value) in &a.other {
        if attr::known(*code) {
            return Err(invalid(format!("attribute {code} in `other`")));
        }
        // Passed on as what it is: optional transitive, partial.
        let flags = flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL;
        out.push((*code, flags, value.clone()));
    }
    Ok(out)
}

fn mp_reach_value(next_hop: Ipv6Addr, prefixes: &[&IpNet]) -> Vec<u8> {
    let [a, b] = Afi::Ipv6.code().to_be_bytes();
    let mut v = vec![a, b, SAFI_UNICAST, 16];
    v.extend_from_slice(&next_hop.octets());
    v.push(0);
    prefixes.iter().for_each(|p| encode_prefix(p, &mut v));
    v
}

fn mp_unreach_value(afi: Afi, prefixes: &[&IpNet]) -> Vec<u8> {
    let [a, b] = afi.code().to_be_bytes();
    let mut v = vec![a, b, SAFI_UNICAST];
    prefixes.iter().for_each(|p| encode_prefix(p, &mut v));
    v
}

fn split_families(nets: &[IpNet]) -> (Vec<&IpNet>, Vec<&IpNet>) {
    nets.iter().partition(|n| matches!(n, IpNet::V4(_)))
}

fn encode_update(u: &Update, ctx: &Context) -> Result<Vec<u8>, EncodeError> {
    if let Some(afi) = u.end_of_rib {
        if !u.withdrawn.is_empty() || !u.announced.is_empty() {
            return Err(invalid("an End-of-RIB marker with prefixes"));
        }
        return Ok(match afi {
            Afi::Ipv4 => vec![0, 0, 0, 0],
            Afi::Ipv6 => {
                let mut body = vec![0, 0, 0, 6];
                write_attribute(
                    &mut body,
                    &(
                        attr::MP_UNREACH_NLRI,
                        flag::OPTIONAL,
                        mp_unreach_value(afi, &[]),
                    ),
                )?;
                body
            }
        });
    }
    if u.withdrawn.is_empty() && u.announced.is_empty() {
        // On the wire that is the IPv4 End-of-RIB marker.
        return Err(invalid(
            "an UPDATE with no prefixes (an End-of-RIB marker is Update::end_of_rib)",
        ));
    }
    let (w4, w6) = split_families(&u.withdrawn);
    let (a4, a6) = split_families(&u.announced);
    let mut attrs = Vec::new();
    if !u.announced.is_empty() {
        if !a4.is_empty() && u.attributes.next_hop.is_none() {
            return Err(invalid("IPv4 prefixes announced without a next hop"));
        }
        attrs = path_attributes(&u.attributes, ctx)?;
        if !a6.is_empty() {
            let Some(IpAddr::V6(nh)) = u.ipv6_next_hop else {
                return Err(invalid("IPv6 prefixes announced without an IPv6 next hop"));
            };
            attrs.push((attr::MP_REACH_NLRI, flag::OPTIONAL, mp_reach_value(nh, &a6)));
        }
    }
    if !w6.is_empty() {
        attrs.push((
            attr::MP_UNREACH_NLRI,
            flag::OPTIONAL,
            mp_unreach_value(Afi::Ipv6, &w6),
        ));
    }
    attrs.sort_by_key(|(code, _, _)| *code);

    let mut withdrawn = Vec::new();
    w4.iter().for_each(|p| encode_prefix(p, &mut withdrawn));
    let mut attributes = Vec::new();
    for a in &attrs {
        write_attribute(&mut attributes, a)?;
    }
    let mut body = Vec::with_capacity(4 + withdrawn.len() + attributes.len());
    for field in [&withdrawn, &attributes] {
        let len = u16::try_from(field.len()).map_err(|_| EncodeError::TooLong(field.len()))?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(field);
    }
    a4.iter().for_each(|p| encode_prefix(p, &mut body));
    Ok(body)
}

// ---------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------

/// Octet counts of an UPDATE being filled by [`pack`].
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    /// Octets of the withdrawn field, of the IPv6 withdrawn prefixes, of
    /// the NLRI field, of the IPv6 announced prefixes.
    w4: usize,
    w6: usize,
    a4: usize,
    a6: usize,
    /// Numbers of IPv6 withdrawn, IPv4 announced, IPv6 announced prefixes.
    n_w6: usize,
    n_a4: usize,
    n_a6: usize,
}

impl Sizes {
    fn add(&mut self, net: &IpNet, announce: bool) {
        let len = prefix_wire_len(net);
        match (announce, net) {
            (false, IpNet::V4(_)) => self.w4 += len,
            (false, IpNet::V6(_)) => {
                self.w6 += len;
                self.n_w6 += 1;
            }
            (true, IpNet::V4(_)) => {
                self.a4 += len;
                self.n_a4 += 1;
            }
            (true, IpNet::V6(_)) => {
                self.a6 += len;
                self.n_a6 += 1;
            }
        }
    }

    /// Encoded size; `base` is the size of the non-MP path attributes.
    /// Mirrors `encode_update`.
    fn total(&self, base: usize) -> usize {
        let mut attrs = 0;
        if self.n_a4 + self.n_a6 > 0 {
            attrs += base;
            if self.n_a6 > 0 {
                let v = 5 + 16 + self.a6;
                attrs += attr_header_len(v) + v;
            }
        }
        if self.n_w6 > 0 {
            let v = 3 + self.w6;
            attrs += attr_header_len(v) + v;
        }
        HEADER_LEN + 2 + self.w4 + 2 + attrs + self.a4
    }
}

/// An UPDATE being filled by [`pack`].
#[derive(Default)]
struct Batch {
    withdrawn: Vec<IpNet>,
    announced: Vec<IpNet>,
    sizes: Sizes,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.withdrawn.is_empty() && self.announced.is_empty()
    }

    fn finish(self, attributes: &Attributes, ipv6_next_hop: Option<IpAddr>) -> Update {
        let announcing = !self.announced.is_empty();
        Update {
            withdrawn: self.withdrawn,
            announced: self.announced,
            attributes: if announcing {
                attributes.clone()
            } else {
                Attributes::default()
            },
            ipv6_next_hop: if self.sizes.n_a6 > 0 {
                ipv6_next_hop
            } else {
                None
            },
            end_of_rib: None,
            treated_as_withdraw: None,
        }
    }
}

/// Splits the announcement of `prefixes` (all with `attributes`, IPv4 ones with
/// attributes.next_hop, IPv6 ones with `ipv6_next_hop` in MP_REACH_NLRI) and the withdrawal of `withdrawn` into as few UPDATEs as fit MAX_MESSAGE_LEN each when encoded with `ctx`.
///
/// Withdrawals come first; the last UPDATE of withdrawals is topped up with
/// announcements. Nothing to send gives no UPDATE (not an End-of-RIB).
/// Attributes too large to fit one UPDATE with a single prefix give
/// UPDATEs of one prefix each that [`encode`] refuses.
pub fn pack(
    withdrawn: &[IpNet],
    prefixes: &[IpNet],
    attributes: &Attributes,
    ipv6_next_hop: Option<IpAddr>,
    ctx: &Context,
) -> Vec<Update> {
    // Attributes that cannot be encoded fail in `encode`; count them as
    // empty here.
    let base = path_attributes(attributes, ctx).map_or(0, |a| attributes_wire_len(&a));
    let mut out = Vec::new();
    let mut batch = Batch::default();
    let items = withdrawn
        .iter()
        .map(|n| (n, false))
        .chain(prefixes.iter().map(|n| (n, true)));
    for (net, announce) in items {
        let mut sizes = batch.sizes;
        sizes.add(net, announce);
        if sizes.total(base) > MAX_MESSAGE_LEN && !batch.is_empty() {
            out.push(std::mem::take(&mut batch).finish(attributes, ipv6_next_hop));
            sizes = Sizes::default();
            sizes.add(net, announce);
        }
        batch.sizes = sizes;
        if announce {
            batch.announced.push(*net);
        } else {
            batch.withdrawn.push(*net);
        }
    }
    if !batch.is_empty() {
        out.push(batch.finish(attributes, ipv6_next_hop));
    }
    out
}
