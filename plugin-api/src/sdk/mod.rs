//! The plugin SDK: write a device in ordinary async Rust, export it with
//! [`export_plugin!`](crate::export_plugin).
//!
//! What the SDK does for a plugin library (`docs/architecture.md`, the plugin boundary):
//! - owns the library's tokio runtime, built lazily on the first `create`. `create`
//!   is spawned there; the per-call entry points (`process_event`, `close`) are
//!   polled in place on the host's thread with this runtime entered, so tokio
//!   timers, sockets and `tokio::spawn` inside them use the plugin's runtime without
//!   a thread hop per call (the reasoning is in `runtime.rs`);
//! - catches every panic at the boundary and returns it as an error;
//! - installs a panic hook and a tracing subscriber that forward to the host's log,
//!   so plugin log lines appear inside the device's span in the host's output.
//!
//! Nothing here is needed by the host; it uses [`crate::abi`] only.

mod client;
mod device;
mod events;
mod log;
mod runtime;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use client::{BoxFuture, Client, ClientBackend, ClientError};
pub use device::{Context, Device, Error};
pub use events::{
    child_event_type, decode_payload, event_suffix, json_event, ConnectionStatus, PayloadError,
    StatusReporter, STATUS_SUFFIX,
};

pub use gateway_model as model;
pub use serde_json;
/// The tokio the SDK runs the plugin on (one major, 1.x), with the features `rt`,
/// `rt-multi-thread`, `macros`, `net`, `io-util`, `time`, `sync` and `signal` (and
/// `test-util` with this crate's `testing` feature). Use it instead of a tokio
/// dependency of your own, so the versions cannot drift apart; add `tokio = "1"` with
/// more features only if you need them (cargo unifies them into this one).
pub use tokio;
pub use tracing;

/// Exports a device type from a plugin library (a `cdylib`).
///
/// ```ignore
/// gateway_plugin_api::export_plugin! {
///     device_type: "hello",
///     json_schema_id: "gateway-host://hello.json",   // optional, with json_schema
///     json_schema: include_str!("../hello.json"),
///     hat_modules: ["vendor.hello"],                  // optional (API 1.2)
///     create: HelloDevice::create,
/// }
/// ```
///
/// `hat_modules` lists the hat-gateway device modules (Python module names) the
/// device type implements: a hat-gateway configuration whose `module` is one of them
/// runs this plugin.
///
/// `create` is an `async fn(serde_json::Value, Context) -> Result<D, Error>` where
/// `D: Device`; the value is the whole device entry of the configuration. The plugin
/// name is the library's crate name (`libhello.so` -> `hello`), its version the
/// package version.
#[macro_export]
macro_rules! export_plugin {
    (
        device_type: $device_type:expr,
        $(json_schema_id: $schema_id:expr, json_schema: $schema:expr,)?
        $(hat_modules: [$($hat_module:expr),* $(,)?],)?
        create: $create:path $(,)?
    ) => {
        $crate::export_plugin! {
            @api_version $crate::abi::API_VERSION,
            device_type: $device_type,
            $(json_schema_id: $schema_id, json_schema: $schema,)?
            $(hat_modules: [$($hat_module),*],)?
            create: $create,
        }
    };
    (
        @api_version $api_version:expr,
        device_type: $device_type:expr,
        $(json_schema_id: $schema_id:expr, json_schema: $schema:expr,)?
        $(hat_modules: [$($hat_module:expr),* $(,)?],)?
        create: $create:path $(,)?
    ) => {
        #[doc(hidden)]
        const __GATEWAY_PLUGIN_HAT_MODULES: &[$crate::abi::abi_stable::std_types::RStr<'static>] =
            &[$($($crate::abi::abi_stable::std_types::RStr::from_str($hat_module)),*)?];

        #[doc(hidden)]
        fn __gateway_plugin_root_module() -> $crate::abi::PluginRootRef {
            use $crate::abi::abi_stable::prefix_type::PrefixTypeTrait as _;
            $crate::sdk::__private::init_plugin();
            $crate::abi::PluginRoot {
                api_version: $crate::abi::abi_stable::std_types::RStr::from_str($api_version),
                plugin_name: $crate::abi::abi_stable::std_types::RStr::from_str(env!(
                    "CARGO_CRATE_NAME"
                )),
                plugin_version: $crate::abi::abi_stable::std_types::RStr::from_str(env!(
                    "CARGO_PKG_VERSION"
                )),
                device_type: $crate::abi::abi_stable::std_types::RStr::from_str($device_type),
                json_schema_id: $crate::export_plugin!(@optional $($schema_id)?),
                json_schema: $crate::export_plugin!(@optional $($schema)?),
                set_host_log: $crate::sdk::__private::set_host_log,
                create: __gateway_plugin_create,
                hat_modules: $crate::abi::abi_stable::std_types::RSlice::from_slice(
                    __GATEWAY_PLUGIN_HAT_MODULES,
                ),
            }
            .leak_into_prefix()
        }

        #[doc(hidden)]
        extern "C" fn __gateway_plugin_create(
            conf: $crate::abi::abi_stable::std_types::RString,
            client: $crate::abi::HostClientBox,
            prefix: $crate::abi::FfiEventType,
        ) -> $crate::abi::async_ffi::FfiFuture<
            $crate::abi::abi_stable::std_types::RResult<
                $crate::abi::PluginDeviceBox,
                $crate::abi::FfiError,
            >,
        > {
            $crate::sdk::__private::create($create, conf, client, prefix)
        }

        /// The library header the host looks up (what abi_stable's
        /// `#[export_root_module]` generates; the name is `abi::ROOT_SYMBOL`).
        #[doc(hidden)]
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader:
            $crate::abi::abi_stable::library::LibHeader = {
            extern "C" fn erased_root_module(
            ) -> $crate::abi::abi_stable::library::RootModuleResult {
                $crate::abi::abi_stable::library::__call_root_module_loader(
                    __gateway_plugin_root_module,
                )
            }
            // SAFETY: the constructor returns a `PluginRootRef`, the module type the
            // header is declared with.
            unsafe {
                $crate::abi::abi_stable::library::LibHeader::from_constructor::<
                    $crate::abi::PluginRootRef,
                >(
                    erased_root_module,
                    $crate::abi::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
    (@optional) => {
        $crate::abi::abi_stable::std_types::ROption::RNone
    };
    (@optional $value:expr) => {
        $crate::abi::abi_stable::std_types::ROption::RSome(
            $crate::abi::abi_stable::std_types::RStr::from_str($value),
        )
    };
}
