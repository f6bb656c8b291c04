//! hat-gateway module names (issue 17, API 1.2): a plugin declares the hat-gateway
//! device modules it implements, `module: hat.gateway.devices.modbus.master` resolves to
//! it, and `gateway-host plugins` shows them.

#![allow(clippy::unwrap_used)]

mod plugin_support;

use gateway_host::plugins::{plugins_command_with, PluginError, PluginRegistry, PluginSearch};
use plugin_support::*;

const MODBUS_MASTER: &str = "hat.gateway.devices.modbus.master";

#[test]
fn hat_module_name_resolves_to_the_plugin_declaring_it() {
    let dir = PluginDir::new();
    std::fs::copy(
        built_library("modbus_master"),
        dir.path.join("libmodbus_master.so"),
    )
    .unwrap();
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve(MODBUS_MASTER).unwrap();
    assert_eq!(plugin.info().device_type, "modbus_master");
    assert_eq!(plugin.info().hat_modules, [MODBUS_MASTER]);
    // The same plugin as by its own name.
    let by_name = registry.resolve("modbus_master").unwrap();
    assert!(std::sync::Arc::ptr_eq(&plugin, &by_name));
}

#[test]
fn hat_module_name_is_found_by_declaration_not_by_file_name() {
    // Under a vendor's file name the guess (libmodbus_master.so) misses; the scan finds
    // the plugin that declares the module.
    let dir = PluginDir::new();
    std::fs::copy(built_library("sim"), dir.path.join("libsim.so")).unwrap();
    std::fs::copy(
        built_library("modbus_master"),
        dir.path.join("libvendor_modbus.so"),
    )
    .unwrap();
    let registry = PluginRegistry::new(PluginSearch::new(vec![dir.path.clone()], false));
    let plugin = registry.resolve(MODBUS_MASTER).unwrap();
    assert_eq!(plugin.info().device_type, "modbus_master");

    let err = registry
        .resolve("hat.gateway.devices.snmp.manager")
        .unwrap_err();
    assert!(
        matches!(err, PluginError::HatModuleNotFound { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("hat.gateway.devices.snmp.manager"), "{text}");
    assert!(
        text.contains(&format!("modbus_master ({MODBUS_MASTER})")),
        "{text}"
    );
}

#[test]
fn plugins_command_lists_hat_modules() {
    let dir = PluginDir::new();
    std::fs::copy(
        built_library("modbus_master"),
        dir.path.join("libmodbus_master.so"),
    )
    .unwrap();
    std::fs::copy(built_library("sim"), dir.path.join("libsim.so")).unwrap();
    let mut out = Vec::new();
    plugins_command_with(
        PluginSearch::new(vec![dir.path.clone()], false),
        None,
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!("hat modules: {MODBUS_MASTER}")),
        "{text}"
    );
    assert_eq!(
        text.matches("hat modules:").count(),
        1,
        "sim declares none:\n{text}"
    );

    let mut out = Vec::new();
    plugins_command_with(
        PluginSearch::new(vec![dir.path.clone()], false),
        Some("sim"),
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("hat modules:  -"), "{text}");
}
