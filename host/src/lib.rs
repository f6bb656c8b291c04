//! gateway-host: a hat-gateway compatible gateway whose device types are plugins.

pub mod cli;
pub mod config;
pub mod device;
pub mod embedded;
pub mod engine;
pub mod events_cmd;
pub mod logging;
pub mod plugins;
pub mod runner;
pub mod spec;
