//! gateway-host: a hat-gateway compatible gateway whose device types are plugins.

pub mod device;
pub mod embedded;
pub mod engine;
pub mod runner;
pub mod spec;
