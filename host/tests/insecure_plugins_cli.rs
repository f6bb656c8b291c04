//! The plugin StrictModes override through the real binary: a plugin in a
//! world-writable directory is refused by `check` with the path, the fix and the
//! override named; the `allow_insecure_plugins` configuration key and the
//! `--allow-insecure-plugins` flag (the names the message gives) both load it.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt as _;

use cli_support::{gateway_host, run, sim_plugin_dir, TempDir};

const SIM: &str = "libsim.so";

/// A configuration dir with `plugins/libsim.so` in a world-writable `plugins`.
fn setup(extra: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("host-insecure");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(sim_plugin_dir().join(SIM), plugins.join(SIM)).unwrap();
    std::fs::set_permissions(plugins.join(SIM), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.write(
        "gateway.yaml",
        &format!(
            "name: gw\n{extra}event_server:\n  eventer_server: {{host: 127.0.0.1, port: 1}}\n\
             devices:\n  - {{module: plugins/{SIM}, name: s1}}\n"
        ),
    );
    (dir, path)
}

#[test]
fn a_plugin_in_a_world_writable_directory_is_refused_with_the_override_named() {
    let (dir, path) = setup("");
    let out = run(gateway_host().arg("check").arg("--conf").arg(&path), None);
    out.assert_exit(2);
    let plugins = dir.path().join("plugins").canonicalize().unwrap();
    for needle in [
        plugins.display().to_string(),
        format!("chmod go-w {}", plugins.display()),
        "--allow-insecure-plugins".to_owned(),
        "allow_insecure_plugins: true".to_owned(),
    ] {
        assert!(
            out.stderr.contains(&needle),
            "{needle:?} in\n{}",
            out.stderr
        );
    }
}

#[test]
fn the_configuration_key_overrides_the_check() {
    let (_dir, path) = setup("allow_insecure_plugins: true\n");
    let out = run(gateway_host().arg("check").arg("--conf").arg(&path), None);
    out.assert_exit(0);
}

#[test]
fn the_flag_overrides_the_check() {
    let (_dir, path) = setup("");
    let out = run(
        gateway_host()
            .arg("check")
            .arg("--allow-insecure-plugins")
            .arg("--conf")
            .arg(&path),
        None,
    );
    out.assert_exit(0);
}
