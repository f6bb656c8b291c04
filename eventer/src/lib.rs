//! The hat-event 0.9 Eventer protocol, byte-compatible with hat-event 0.9.44.
//!
//! Layers, bottom up (see `docs/eventer-protocol.md`, section 14):
//! - [`sbs`]: the SBS primitives the protocol uses (no sockets);
//! - [`chatter`]: length-of-length framing and the `HatChatter.Msg` header (no sockets);
//! - [`message`]: the `HatEventer.Msg*` messages, encoded into chatter `Data.data`;
//! - [`client`] and [`server`]: sessions that own a TCP socket, with conversations,
//!   keepalive and the Eventer init / register / query / notify flows.

pub mod chatter;
pub mod client;
pub mod connection;
pub mod message;
pub mod sbs;
pub mod server;

pub use gateway_model as model;
