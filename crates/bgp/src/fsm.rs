//! One session's state machine (RFC 4271 §8), pure: the caller feeds it
//! [`Event`]s (a connection came up, a message arrived, a timer fired) and
//! carries out the [`Action`]s it returns (open a connection, send, arm a
//! timer, hand routes on). Time is the caller's: timers are named, armed and
//! stopped by actions and come back as events.
//!
//! ```text
//!          Start                 Connected            OPEN ok
//!  Idle ──────────▶ Connect ─────────────▶ OpenSent ─────────▶ OpenConfirm
//!   ▲   (passive:    │  ▲  retry timer        │                    │ KEEPALIVE
//!   │    Active)     ▼  │                     │                    ▼
//!   └──── error, NOTIFICATION, hold timer ◀───┴──────────────── Established
//! ```
//!
//! Any error sends the NOTIFICATION it calls for (when a connection is up),
//! drops the connection, reports [`Action::Down`] and goes back to `Connect`
//! (or `Active` when passive) with the retry timer armed, as BIRD does
//! with its `error wait time`; only [`Event::Stop`] goes to `Idle`.

use std::net::Ipv4Addr;

use crate::msg::{
    Afi, Capability, GracefulRestart, Message, Notification, Open, SAFI_UNICAST, Update, err,
};
use crate::wire::DecodeError;

/// Session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// The name BIRD and `calicoctl node status` use.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

/// The timers a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
}

/// What a session is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub local_as: u32,
    /// The AS the peer must announce.
    pub peer_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (BIRD's default: 240).
    pub hold_time: u16,
    /// Seconds between KEEPALIVEs; a third of the negotiated hold time when
    /// not set (BIRD's `keepalive time`).
    pub keepalive: Option<u16>,
    /// Seconds between connection attempts (Calico's BIRD: 5).
    pub connect_retry: u16,
    /// Never connects; waits for the peer (Calico's mesh: the node with
    /// the lower address waits).
    pub passive: bool,
    /// Families offered (multiprotocol capability).
    pub families: Vec<Afi>,
    /// Graceful restart: our restart time in seconds, if offered.
    pub graceful_restart: Option<u16>,
    /// We restarted and kept our forwarding state (the R and F bits).
    pub restarting: bool,
}

impl Config {
    /// The OPEN this configuration sends.
    pub fn open(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|&afi| Capability::Multiprotocol {
                afi,
                safi: SAFI_UNICAST,
            })
            .collect();
        capabilities.push(Capability::RouteRefresh);
        if let Some(time) = self.graceful_restart {
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restarting: self.restarting,
                restart_time: time.min(4095),
                families: self
                    .families
                    .iter()
                    .map(|&afi| (afi, SAFI_UNICAST, self.restarting))
                    .collect(),
            }));
        }
        capabilities.push(Capability::FourOctetAs(self.local_as));
        Open {
            asn: self.local_as,
            hold_time: self.hold_time,
            router_id: self.router_id,
            capabilities,
        }
    }
}

/// What both sides agreed on, known once the peer's OPEN is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time in seconds (0: no keepalives, no hold timer).
    pub hold_time: u16,
    /// Both sent the 4-octet AS capability.
    pub asn4: bool,
    /// Families both offered.
    pub families: Vec<Afi>,
    /// The peer's graceful restart capability.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer accepts ROUTE-REFRESH.
    pub route_refresh: bool,
    pub peer_router_id: Ipv4Addr,
    /// The configured keepalive time, if any.
    pub keepalive: Option<u16>,
}

impl Negotiated {
    /// Seconds between our KEEPALIVEs (0: none).
    pub fn keepalive(&self) -> u16 {
        match self.keepalive {
            _ if self.hold_time == 0 => 0,
            Some(k) => k.clamp(1, self.hold_time),
            None => self.hold_time / 3,
        }
    }
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Administrative start.
    Start,
    /// Administrative stop (sends Cease, goes Idle).
    Stop,
    /// A connection to the peer is up (ours or the peer's).
    Connected,
    /// The connection failed or closed.
    ConnectionLost,
    /// A whole message arrived.
    Message(Message),
    /// Bytes arrived that do not decode.
    DecodeError(DecodeError),
    /// A timer fired.
    Timer(Timer),
    /// The peer's routes of `afi` exceed the caller's limit of `limit`
    /// prefixes: Cease, Maximum Number of Prefixes Reached (RFC 4486), and
    /// its routes go (not kept as for a graceful restart); the session is
    /// tried again after the retry time, as BIRD's `import limit` with
    /// `action restart`.
    PrefixLimitExceeded { afi: Afi, limit: u32 },
}

/// Outputs, to be carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to the peer.
    Connect,
    /// Close the connection (after sending what was queued).
    Disconnect,
    Send(Message),
    /// Arm a timer for that many seconds (replacing an armed one).
    Arm(Timer, u16),
    Disarm(Timer),
    /// The session is up: advertise, and use these settings on the wire.
    Up(Negotiated),
    /// Routes from the peer (only while established).
    Received(Update),
    /// The peer asked for our routes again.
    RefreshRequested(Afi),
    /// The session went down (it was up, or an attempt failed), and why.
    /// `graceful`: the peer may restart gracefully — keep its routes for
    /// its restart time instead of withdrawing them.
    Down {
        reason: String,
        graceful: bool,
    },
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    state: State,
    negotiated: Option<Negotiated>,
    /// Why the session last went down.
    last_error: Option<String>,
}

impl Session {
    pub fn new(config: Config) -> Session {
        Session {
            config,
            state: State::Idle,
            negotiated: None,
            last_error: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The agreed settings while established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether an incoming connection may take over now (none is past the
    /// connecting states).
    pub fn accepts_connection(&self) -> bool {
        matches!(self.state, State::Connect | State::Active)
    }

    /// Feeds one event; returns what to do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        use State::*;
        match (self.state, event) {
            (Idle, Event::Start) => self.wait_for_connection(),
            (_, Event::Start) => Vec::new(),
            (Idle, _) => Vec::new(),
            (_, Event::Stop) => {
                let mut out = Vec::new();
                if matches!(self.state, OpenSent | OpenConfirm | Established) {
                    out.push(Action::Send(Message::Notification(Notification::new(
                        err::CEASE,
                        err::ADMINISTRATIVE_SHUTDOWN,
                        Vec::new(),
                    ))));
                }
                out.extend(self.drop_connection("stopped", false));
                self.state = Idle;
                out.push(Action::Disarm(Timer::ConnectRetry));
                out
            }
            // RFC 4271 ConnectRetryTimer_Expires: try again.
            (Connect | Active, Event::Timer(Timer::ConnectRetry)) => self.wait_for_connection(),
            (Connect | Active, Event::Connected) => {
                self.state = OpenSent;
                vec![
                    Action::Disarm(Timer::ConnectRetry),
                    Action::Send(Message::Open(self.config.open())),
                    // RFC 4271 §8: a large hold time until the OPEN arrives.
                    Action::Arm(Timer::Hold, 240),
                ]
            }
            (Connect | Active, Event::ConnectionLost) => {
                vec![Action::Arm(Timer::ConnectRetry, self.config.connect_retry)]
            }
            (Connect | Active, _) => Vec::new(),
            (OpenSent, Event::Message(Message::Open(open))) => self.receive_open(open),
            (OpenConfirm, Event::Message(Message::Keepalive)) => {
                self.state = Established;
                self.last_error = None;
                let n = self.negotiated.clone();
                let mut out = self.rearm_hold();
                if let Some(n) = n {
                    out.push(Action::Up(n));
                }
                out
            }
            (Established, Event::Message(Message::Keepalive)) => self.rearm_hold(),
            (Established, Event::Message(Message::Update(u))) => {
                let mut out = self.rearm_hold();
                out.push(Action::Received(u));
                out
            }
            (Established, Event::Message(Message::RouteRefresh(r))) => {
                let mut out = self.rearm_hold();
                if self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&r.afi))
                {
                    out.push(Action::RefreshRequested(r.afi));
                }
                out
            }
            (OpenConfirm | Established, Event::Timer(Timer::Keepalive)) => {
                let mut out = vec![Action::Send(Message::Keepalive)];
                if let Some(k) = self.negotiated.as_ref().map(Negotiated::keepalive)
                    && k > 0
                {
                    out.push(Action::Arm(Timer::Keepalive, k));
                }
                out
            }
            (_, Event::Message(Message::Notification(n))) => {
                // RFC 8538: a Cease/Hard Reset (9) is never graceful; any
                // other NOTIFICATION ends the session as an error would.
                let graceful = n.code != err::CEASE || n.subcode != 9;
                self.fail(None, &format!("received NOTIFICATION: {n}"), graceful)
            }
            (_, Event::DecodeError(e)) => {
                let reason = format!("sent NOTIFICATION: {e}");
                self.fail(Some(e.notification), &reason, true)
            }
            (_, Event::Timer(Timer::Hold)) => self.fail(
                Some(Notification::new(err::HOLD_TIMER_EXPIRED, 0, Vec::new())),
                "hold timer expired",
                true,
            ),
            (Established, Event::PrefixLimitExceeded { afi, limit }) => {
                // RFC 4486 §4: AFI, SAFI and the upper bound.
                let mut data = afi.code().to_be_bytes().to_vec();
                data.push(SAFI_UNICAST);
                data.extend_from_slice(&limit.to_be_bytes());
                self.fail(
                    Some(Notification::new(
                        err::CEASE,
                        err::MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
                        data,
                    )),
                    &format!("more than {limit} prefixes received: limit reached"),
                    false,
                )
            }
            (_, Event::PrefixLimitExceeded { .. }) => Vec::new(),
            (_, Event::ConnectionLost) => self.fail(None, "connection lost", true),
            (_, Event::Connected) => Vec::new(),
            (_, Event::Timer(_)) => Vec::new(),
            // Anything else is out of order (RFC 4271 §6.6: FSM error).
            (state, Event::Message(m)) => {
                let subcode = match state {
                    OpenSent => 1,
                    OpenConfirm => 2,
                    _ => 3,
                };
                self.fail(
                    Some(Notification::new(err::FSM_ERROR, subcode, Vec::new())),
                    &format!("unexpected {} in {}", kind(&m), state.name()),
                    true,
                )
            }
        }
    }

    fn wait_for_connection(&mut self) -> Vec<Action> {
        let mut out = vec![Action::Arm(Timer::ConnectRetry, self.config.connect_retry)];
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Action::Connect);
        }
        out
    }

    fn rearm_hold(&self) -> Vec<Action> {
        match self.negotiated.as_ref().map(|n| n.hold_time) {
            Some(h) if h > 0 => vec![Action::Arm(Timer::Hold, h)],
            _ => Vec::new(),
        }
    }

    /// RFC 4271 §6.2 checks, then OpenConfirm.
    fn receive_open(&mut self, open: Open) -> Vec<Action> {
        let n = |sub: u8, data: Vec<u8>| Some(Notification::new(err::OPEN_MESSAGE, sub, data));
        if open.asn != self.config.peer_as {
            let reason = format!(
                "peer announced AS {} instead of {}",
                open.asn, self.config.peer_as
            );
            let data = u16::try_from(open.asn)
                .unwrap_or(crate::msg::AS_TRANS)
                .to_be_bytes()
                .to_vec();
            return self.fail(n(err::BAD_PEER_AS, data), &reason, false);
        }
        let internal = self.config.local_as == self.config.peer_as;
        if open.router_id.is_unspecified() || (internal && open.router_id == self.config.router_id)
        {
            let reason = format!("bad BGP identifier {}", open.router_id);
            return self.fail(n(err::BAD_BGP_IDENTIFIER, Vec::new()), &reason, false);
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            let reason = format!("unacceptable hold time {}", open.hold_time);
            return self.fail(n(err::UNACCEPTABLE_HOLD_TIME, Vec::new()), &reason, false);
        }
        let hold_time = self.config.hold_time.min(open.hold_time);
        let theirs = open.families();
        let families: Vec<Afi> = self
            .config
            .families
            .iter()
            .copied()
            .filter(|a| theirs.contains(a))
            .collect();
        let negotiated = Negotiated {
            hold_time,
            asn4: open.four_octet_as().is_some(),
            families,
            peer_graceful_restart: open.graceful_restart().cloned(),
            route_refresh: open.route_refresh(),
            peer_router_id: open.router_id,
            keepalive: self.config.keepalive,
        };
        let keepalive = negotiated.keepalive();
        self.negotiated = Some(negotiated);
        self.state = State::OpenConfirm;
        let mut out = vec![Action::Send(Message::Keepalive)];
        if hold_time > 0 {
            out.push(Action::Arm(Timer::Hold, hold_time));
            out.push(Action::Arm(Timer::Keepalive, keepalive.max(1)));
        } else {
            out.push(Action::Disarm(Timer::Hold));
        }
        out
    }

    /// Ends the attempt or the session: NOTIFICATION if there is one to
    /// send, close, report, and wait to retry.
    fn fail(
        &mut self,
        notification: Option<Notification>,
        reason: &str,
        graceful: bool,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(n) = notification {
            out.push(Action::Send(Message::Notification(n)));
        }
        out.extend(self.drop_connection(reason, graceful));
        out.push(Action::Arm(Timer::ConnectRetry, self.config.connect_retry));
        self.state = if self.config.passive {
            State::Active
        } else {
            State::Connect
        };
        out
    }

    fn drop_connection(&mut self, reason: &str, graceful: bool) -> Vec<Action> {
        let was_up = self.state == State::Established;
        // Graceful only if the peer offered graceful restart.
        let graceful = graceful
            && was_up
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.peer_graceful_restart.is_some());
        self.negotiated = None;
        self.last_error = Some(reason.to_string());
        let mut out = vec![
            Action::Disconnect,
            Action::Disarm(Timer::Hold),
            Action::Disarm(Timer::Keepalive),
        ];
        if self.state != State::Idle {
            out.push(Action::Down {
                reason: reason.to_string(),
                graceful,
            });
        }
        out
    }
}

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Open(_) => "OPEN",
        Message::Update(_) => "UPDATE",
        Message::Notification(_) => "NOTIFICATION",
        Message::Keepalive => "KEEPALIVE",
        Message::RouteRefresh(_) => "ROUTE-REFRESH",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::msg::RouteRefresh;

    fn config(passive: bool) -> Config {
        Config {
            local_as: 64512,
            peer_as: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            hold_time: 90,
            keepalive: None,
            connect_retry: 5,
            passive,
            families: vec![Afi::Ipv4, Afi::Ipv6],
            graceful_restart: Some(120),
            restarting: false,
        }
    }

    fn peer_open(asn: u32, id: [u8; 4], hold: u16, gr: bool) -> Message {
        let mut c = Config {
            local_as: asn,
            router_id: Ipv4Addr::from(id),
            hold_time: hold,
            families: vec![Afi::Ipv4],
            graceful_restart: gr.then_some(120),
            ..config(false)
        };
        c.peer_as = 64512;
        Message::Open(c.open())
    }

    fn established(passive: bool) -> Session {
        let mut s = Session::new(config(passive));
        s.step(Event::Start);
        s.step(Event::Connected);
        s.step(Event::Message(peer_open(64512, [10, 0, 0, 2], 30, true)));
        let out = s.step(Event::Message(Message::Keepalive));
        assert!(out.iter().any(|a| matches!(a, Action::Up(_))));
        s
    }

    #[test]
    fn active_side_connects_and_comes_up() {
        let mut s = Session::new(config(false));
        let out = s.step(Event::Start);
        assert_eq!(s.state(), State::Connect);
        assert!(out.contains(&Action::Connect));
        let out = s.step(Event::Connected);
        assert_eq!(s.state(), State::OpenSent);
        assert!(matches!(out[1], Action::Send(Message::Open(ref o)) if o.asn == 64512));
        let out = s.step(Event::Message(peer_open(64512, [10, 0, 0, 2], 30, true)));
        assert_eq!(s.state(), State::OpenConfirm);
        assert_eq!(
            out,
            vec![
                Action::Send(Message::Keepalive),
                Action::Arm(Timer::Hold, 30),
                Action::Arm(Timer::Keepalive, 10),
            ],
            "the smaller hold time wins; keepalive a third of it"
        );
        let out = s.step(Event::Message(Message::Keepalive));
        assert_eq!(s.state(), State::Established);
        let Some(Action::Up(n)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(n.families, vec![Afi::Ipv4], "only what both offered");
        assert!(n.asn4 && n.route_refresh && n.peer_graceful_restart.is_some());
    }

    #[test]
    fn passive_side_waits() {
        let mut s = Session::new(config(true));
        let out = s.step(Event::Start);
        assert_eq!(s.state(), State::Active);
        assert!(!out.contains(&Action::Connect));
        assert!(s.accepts_connection());
        // The retry timer in Active does not connect either.
        assert!(
            !s.step(Event::Timer(Timer::ConnectRetry))
                .contains(&Action::Connect)
        );
    }

    #[test]
    fn open_errors_send_the_right_notification() {
        for (open, sub) in [
            (peer_open(64513, [10, 0, 0, 2], 90, false), err::BAD_PEER_AS),
            (
                peer_open(64512, [10, 0, 0, 1], 90, false),
                err::BAD_BGP_IDENTIFIER,
            ),
            (
                peer_open(64512, [0, 0, 0, 0], 90, false),
                err::BAD_BGP_IDENTIFIER,
            ),
            (
                peer_open(64512, [10, 0, 0, 2], 2, false),
                err::UNACCEPTABLE_HOLD_TIME,
            ),
        ] {
            let mut s = Session::new(config(false));
            s.step(Event::Start);
            s.step(Event::Connected);
            let out = s.step(Event::Message(open));
            let Action::Send(Message::Notification(n)) = &out[0] else {
                panic!("{out:?}")
            };
            assert_eq!((n.code, n.subcode), (err::OPEN_MESSAGE, sub));
            assert!(out.contains(&Action::Disconnect));
            assert_eq!(s.state(), State::Connect, "retries later");
            assert!(out.contains(&Action::Arm(Timer::ConnectRetry, 5)));
        }
    }

    #[test]
    fn established_session_passes_updates_and_keeps_alive() {
        let mut s = established(false);
        let u = Update::end_of_rib(Afi::Ipv4);
        let out = s.step(Event::Message(Message::Update(u.clone())));
        assert_eq!(out, vec![Action::Arm(Timer::Hold, 30), Action::Received(u)]);
        let out = s.step(Event::Timer(Timer::Keepalive));
        assert_eq!(
            out,
            vec![
                Action::Send(Message::Keepalive),
                Action::Arm(Timer::Keepalive, 10)
            ]
        );
        let out = s.step(Event::Message(Message::RouteRefresh(RouteRefresh {
            afi: Afi::Ipv4,
            safi: 1,
        })));
        assert!(out.contains(&Action::RefreshRequested(Afi::Ipv4)));
        let out = s.step(Event::Message(Message::RouteRefresh(RouteRefresh {
            afi: Afi::Ipv6,
            safi: 1,
        })));
        assert!(
            !out.iter().any(|a| matches!(a, Action::RefreshRequested(_))),
            "not a negotiated family"
        );
    }

    #[test]
    fn hold_timer_expiry_notifies_and_is_graceful_with_a_restarting_peer() {
        let mut s = established(false);
        let out = s.step(Event::Timer(Timer::Hold));
        assert_eq!(
            out[0],
            Action::Send(Message::Notification(Notification::new(
                err::HOLD_TIMER_EXPIRED,
                0,
                vec![]
            )))
        );
        assert!(out.contains(&Action::Down {
            reason: "hold timer expired".into(),
            graceful: true
        }));
        assert_eq!(s.state(), State::Connect);
        assert!(s.negotiated().is_none());
    }

    #[test]
    fn connection_loss_before_established_is_not_graceful() {
        let mut s = Session::new(config(false));
        s.step(Event::Start);
        s.step(Event::Connected);
        let out = s.step(Event::ConnectionLost);
        assert!(out.contains(&Action::Down {
            reason: "connection lost".into(),
            graceful: false
        }));
        assert!(
            s.step(Event::Timer(Timer::ConnectRetry))
                .contains(&Action::Connect)
        );
    }

    #[test]
    fn unexpected_messages_are_fsm_errors() {
        let mut s = Session::new(config(false));
        s.step(Event::Start);
        s.step(Event::Connected);
        let out = s.step(Event::Message(Message::Keepalive));
        assert_eq!(
            out[0],
            Action::Send(Message::Notification(Notification::new(
                err::FSM_ERROR,
                1,
                vec![]
            )))
        );
        let mut s = established(false);
        let out = s.step(Event::Message(peer_open(64512, [10, 0, 0, 2], 30, true)));
        assert_eq!(
            out[0],
            Action::Send(Message::Notification(Notification::new(
                err::FSM_ERROR,
                3,
                vec![]
            )))
        );
    }

    #[test]
    fn stop_sends_cease_and_goes_idle() {
        let mut s = established(false);
        let out = s.step(Event::Stop);
        assert_eq!(
            out[0],
            Action::Send(Message::Notification(Notification::new(
                err::CEASE,
                err::ADMINISTRATIVE_SHUTDOWN,
                vec![]
            )))
        );
        assert_eq!(s.state(), State::Idle);
        assert!(
            s.step(Event::Connected).is_empty(),
            "idle ignores connections"
        );
    }

    #[test]
    fn received_notification_ends_the_session() {
        let mut s = established(false);
        let out = s.step(Event::Message(Message::Notification(Notification::new(
            err::CEASE,
            err::ADMINISTRATIVE_RESET,
            vec![],
        ))));
        assert!(out.contains(&Action::Disconnect));
        assert!(matches!(
            out.iter().find(|a| matches!(a, Action::Down { .. })),
            Some(Action::Down { graceful: true, .. })
        ));
        assert_eq!(
            s.last_error(),
            Some("received NOTIFICATION: cease (code 6, subcode 4)")
        );
    }

    #[test]
    fn prefix_limit_ceases_and_drops_the_routes() {
        // The peer offered graceful restart.
        let mut s = established(false);
        let out = s.step(Event::PrefixLimitExceeded {
            afi: Afi::Ipv4,
            limit: 1000,
        });
        assert_eq!(
            out[0],
            Action::Send(Message::Notification(Notification::new(
                err::CEASE,
                err::MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
                vec![0, 1, 1, 0, 0, 0x03, 0xe8]
            )))
        );
        assert!(out.contains(&Action::Disconnect));
        // Not graceful, though the peer offered graceful restart: its
        // routes go now.
        assert!(
            out.iter().any(|a| matches!(
                a,
                Action::Down {
                    graceful: false,
                    ..
                }
            )),
            "{out:?}"
        );
        assert!(out.contains(&Action::Arm(Timer::ConnectRetry, 5)));
        assert_eq!(s.state(), State::Connect);
        // Before the session is up there is nothing to cease.
        let again = s.step(Event::PrefixLimitExceeded {
            afi: Afi::Ipv4,
            limit: 1000,
        });
        assert_eq!(again, []);
    }

    #[test]
    fn configured_keepalive_time() {
        let mut c = config(false);
        c.keepalive = Some(7);
        let mut s = Session::new(c);
        s.step(Event::Start);
        s.step(Event::Connected);
        let out = s.step(Event::Message(peer_open(64512, [10, 0, 0, 2], 30, false)));
        assert!(out.contains(&Action::Arm(Timer::Keepalive, 7)), "{out:?}");
    }

    #[test]
    fn open_carries_capabilities() {
        let mut c = config(false);
        c.local_as = 4_200_000_000;
        c.restarting = true;
        let o = c.open();
        assert_eq!(o.four_octet_as(), Some(4_200_000_000));
        let gr = o.graceful_restart().unwrap();
        assert!(gr.restarting && gr.restart_time == 120);
        assert_eq!(
            gr.families,
            vec![(Afi::Ipv4, 1, true), (Afi::Ipv6, 1, true)]
        );
        assert_eq!(o.families(), vec![Afi::Ipv4, Afi::Ipv6]);
    }
}
