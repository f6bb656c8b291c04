//! gateway-plugin-api: the stable ABI between gateway-host and device plugins
//! ([`abi`]), and the SDK plugin authors use ([`sdk`], default feature `sdk`).
//!
//! See `README.md` in this crate for the plugin guide and a hello-world plugin.

pub mod abi;
#[cfg(feature = "sdk")]
pub mod sdk;

pub use gateway_model as model;
