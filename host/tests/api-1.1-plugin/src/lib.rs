//! A plugin written against the raw ABI of gateway-plugin-api 1.1.0: device type
//! `legacy_echo`. Every event it receives is registered back as
//! `P/gateway/echo` with the same payload, through the host's client.

use gateway_plugin_api::abi::abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use gateway_plugin_api::abi::abi_stable::prefix_type::PrefixTypeTrait;
use gateway_plugin_api::abi::abi_stable::sabi_trait::TD_Opaque;
use gateway_plugin_api::abi::abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use gateway_plugin_api::abi::async_ffi::{FfiFuture, FutureExt};
use gateway_plugin_api::abi::{
    FfiError, FfiEvent, FfiEventType, FfiRegisterEvent, HostClientBox, HostLogFn, PluginDevice,
    PluginDeviceBox, PluginDevice_TO, PluginRoot, PluginRootRef, API_VERSION,
};

struct Echo {
    client: HostClientBox,
    prefix: FfiEventType,
}

impl PluginDevice for Echo {
    fn process_event(&self, event: FfiEvent) -> FfiFuture<RResult<(), FfiError>> {
        let mut event_type = self.prefix.clone();
        event_type.push(RString::from("gateway"));
        event_type.push(RString::from("echo"));
        let echo = FfiRegisterEvent {
            event_type,
            source_timestamp: event.source_timestamp,
            payload: event.payload,
        };
        let call = self.client.register(RVec::from(vec![echo]));
        async move {
            match call.await {
                RResult::ROk(()) => RResult::ROk(()),
                RResult::RErr(err) => RResult::RErr(FfiError::failed(format!("{err:?}"))),
            }
        }
        .into_ffi()
    }

    fn close(&self) -> FfiFuture<()> {
        async {}.into_ffi()
    }

    fn closed(&self) -> FfiFuture<()> {
        std::future::pending().into_ffi()
    }
}

extern "C" fn set_host_log(_log: HostLogFn) {}

extern "C" fn create(
    _conf: RString,
    client: HostClientBox,
    prefix: FfiEventType,
) -> FfiFuture<RResult<PluginDeviceBox, FfiError>> {
    let device = PluginDevice_TO::from_value(Echo { client, prefix }, TD_Opaque);
    async move { RResult::ROk(device) }.into_ffi()
}

fn root_module() -> PluginRootRef {
    PluginRoot {
        api_version: RStr::from_str(API_VERSION),
        plugin_name: RStr::from_str("legacy_echo"),
        plugin_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        device_type: RStr::from_str("legacy_echo"),
        json_schema_id: ROption::RNone,
        json_schema: ROption::RNone,
        set_host_log,
        create,
    }
    .leak_into_prefix()
}

extern "C" fn erased_root_module() -> RootModuleResult {
    __call_root_module_loader(root_module)
}

/// The library header (`gateway_plugin_api::abi::ROOT_SYMBOL`).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static _1as_0lib_1header_0root_bmodule_bloader: LibHeader =
    // SAFETY: the constructor returns a `PluginRootRef`, the declared module type.
    unsafe {
        LibHeader::from_constructor::<PluginRootRef>(erased_root_module, CheckTypeLayout::Yes)
    };
