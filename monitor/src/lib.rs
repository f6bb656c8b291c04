//! The component side of hat-monitor 0.8 (byte-compatible with hat-monitor 0.8.23).
//!
//! Layers, bottom up, like `gateway-eventer`:
//! - [`message`]: the `HatObserver` messages a component exchanges with its local
//!   Monitor Server (`MsgClient`, `MsgServer`, `MsgClose`), encoded into chatter
//!   `Data.data` with the SBS primitives of `gateway_eventer::sbs` (no sockets);
//! - [`component`]: hat's `hat.monitor.component` ready / blessing-token state machine,
//!   driven by messages and calls, returning what to send and when to start or stop
//!   working (no sockets, no clock);
//! - [`client`]: the thin tokio shell: one task owns the chatter connection (framing
//!   from `gateway_eventer::chatter`, Ping / Pong), and [`client::MonitorComponent`]
//!   pumps its messages through the state machine.
//!
//! A separate crate rather than a module of `gateway-eventer`: it shares only the SBS
//! primitives and the chatter framing (both public there), none of the Eventer
//! session (conversations, requests, the `HatEventer` messages), and the Eventer crate
//! stays the Eventer protocol.

pub mod client;
pub mod component;
pub mod message;

pub use component::{Action, Component, ComponentState};
pub use message::{BlessingReq, BlessingRes, ComponentInfo, MsgClient, MsgServer, ServerMsg};
