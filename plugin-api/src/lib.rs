//! gateway-plugin-api: the stable ABI between gateway-host and device plugins
//! ([`abi`]), and the SDK plugin authors use ([`sdk`], default feature `sdk`).
//!
//! The plugin guide and a hello-world plugin follow (this crate's `README.md`).
//!
#![doc = include_str!("../README.md")]

pub mod abi;
#[cfg(feature = "sdk")]
pub mod sdk;

pub use gateway_model as model;
