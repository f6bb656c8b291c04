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

/// The text of a caught panic: its message when the payload is a string (what
/// `panic!` produces), a fixed text otherwise.
///
/// The one helper for it on both sides of the plugin boundary: the SDK uses it where it
/// catches a plugin panic, the host's device proxy where it catches a device panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
