//! gateway-host: a hat-gateway compatible gateway whose device types are plugins.
//!
//! Layout, in the order a run goes through it (see `docs/architecture.md`; what the
//! gateway does is `docs/gateway-semantics.md`):
//! - [`cli`]: the `gateway-host` binary's command line and commands (run, `check`,
//!   `schema`, `plugins`, `events`, `plugin new`), exit codes;
//! - [`config`]: read YAML / JSON / TOML, validate against the main schema and each
//!   device entry against its plugin's schema, build a [`spec::GatewaySpec`];
//! - [`plugins`]: find, check and load plugin libraries through the stable ABI, and
//!   adapt them to the host's device traits ([`device`]);
//! - [`logging`]: the `log` section as a tracing subscriber (installed by the binary
//!   only);
//! - [`runner`]: the event-server connection (remote Eventer client or [`embedded`]
//!   server), reconnection, `require_operational`, shutdown; an engine per active
//!   connection;
//! - [`engine`]: routing of notified events by prefix and the start-up enable query;
//!   one device proxy per device (`engine::proxy`: the state machine of
//!   `docs/gateway-semantics.md` section 7 and its async shell);
//! - [`embedded`]: the in-process Eventer server, its in-memory store and its TCP side;
//! - [`events_cmd`]: the operator's Eventer client (`gateway-host events`);
//! - [`ops`]: the metrics endpoint (`/metrics`, `/health`, `/ready`, `/status`),
//!   systemd notify and the `status` command;
//! - [`reload`]: reload without restart (SIGHUP, `gateway-host reload`, pid file);
//! - [`adminer`]: hat-gateway's Adminer protocol (log configuration at run time,
//!   `gateway-host log-level`).

pub mod adminer;
pub mod cli;
pub mod config;
pub mod device;
pub mod embedded;
pub mod engine;
pub mod events_cmd;
pub mod logging;
pub mod ops;
pub mod plugins;
pub mod reload;
pub mod runner;
pub mod spec;
