//! BGP-4 for calico-rs, pure: no sockets, no clocks, no threads.
//!
//! - [`msg`]: the messages (RFC 4271 OPEN, UPDATE, NOTIFICATION, KEEPALIVE;
//!   RFC 2918 ROUTE-REFRESH) with the capabilities and path attributes
//!   Calico's peers use (RFC 6793 4-octet AS, RFC 4760 multiprotocol IPv4
//!   and IPv6 unicast, RFC 4724 graceful restart, RFC 4456 route reflection,
//!   RFC 1997 communities).
//! - [`wire`]: their encoding; decoding never panics, and an error is either
//!   the NOTIFICATION that ends the session (RFC 4271 §6) or, for a
//!   malformed attribute, the update's routes treated as withdrawn
//!   (RFC 7606).
//! - [`fsm`]: one session's state machine (RFC 4271 §8): events in,
//!   actions out; the caller owns the socket and the timers.
//! - [`rib`]: the routes each peer sent, the best path per prefix, route
//!   reflection and what each peer is sent: events in, deltas out.

pub mod fsm;
pub mod msg;
pub mod rib;
pub mod wire;
