//! `gateway-host plugin new`: the generated project builds out of tree against the
//! local gateway-plugin-api, passes its own test-kit test, and loads and runs in the
//! real host, whose log filter selects the plugin's records by the plugin's own target.

#![allow(clippy::unwrap_used)]

// Not every helper is used here.
#[allow(unused_imports)]
mod cli_support;
mod plugin_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{gateway_host, run, Proc, Stream};
use plugin_support::{profile_dir, PluginDir};

const NAME: &str = "demo_thermo";

/// Runs cargo `args` on the generated project (offline first: its dependencies are the
/// workspace's, already in the local cache), with its own target directory under ours.
fn cargo(project: &Path, args: &[&str]) -> std::process::Output {
    let target_dir = profile_dir().parent().unwrap().join("plugin-template");
    let attempt = |offline: bool| {
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command
            .args(args)
            .arg("--manifest-path")
            .arg(project.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS");
        if offline {
            command.arg("--offline");
        }
        command.output().unwrap()
    };
    let output = attempt(true);
    let output = if output.status.success() {
        output
    } else {
        attempt(false)
    };
    assert!(
        output.status.success(),
        "cargo {args:?} on the generated project failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn generate() -> PathBuf {
    let root = std::env::temp_dir().join(format!("gateway-plugin-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let project = root.join(NAME);
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    let output = run(
        gateway_host()
            .args(["plugin", "new", NAME, "--dir"])
            .arg(&project)
            .arg("--api-path")
            .arg(api.canonicalize().unwrap()),
        None,
    );
    output.assert_exit(0);
    for file in [
        "Cargo.toml",
        "schema.json",
        "src/lib.rs",
        "src/tests.rs",
        "README.md",
    ] {
        assert!(
            project.join(file).is_file(),
            "{file} missing: {}",
            output.stdout
        );
        assert!(output.stdout.contains(file), "{}", output.stdout);
    }
    // A second run refuses to overwrite the project.
    let again = run(
        gateway_host()
            .args(["plugin", "new", NAME, "--dir"])
            .arg(&project),
        None,
    );
    again.assert_exit(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    project
}

#[test]
fn generated_plugin_passes_its_kit_test_and_runs_in_the_host_with_its_own_log_target() {
    let project = generate();
    let tested = cargo(&project, &["test"]);
    let stdout = String::from_utf8_lossy(&tested.stdout);
    assert!(
        stdout.contains("reports_status_readings_and_setpoints ... ok"),
        "{stdout}"
    );
    cargo(&project, &["build"]);
    let built = profile_dir()
        .parent()
        .unwrap()
        .join(format!("plugin-template/debug/lib{NAME}.so"));

    let dir = PluginDir::new();
    let library = dir.path.join(format!("lib{NAME}.so"));
    std::fs::copy(&built, &library).unwrap();
    std::fs::set_permissions(&library, std::fs::Permissions::from_mode(0o644)).unwrap();

    // What the host sees, including the strict schema.
    let info = run(
        gateway_host()
            .args(["plugins", "--plugins-dir"])
            .arg(&dir.path)
            .args(["info", NAME]),
        None,
    );
    info.assert_exit(0);
    assert!(
        info.stdout.contains("vendor://demo_thermo.json"),
        "{}",
        info.stdout
    );

    // The host at info, the plugin at debug: only a filter on the plugin's own target
    // lets its debug records through (they used to come out under the host's adapter
    // target, which `info` filters out).
    let conf = dir.path.join("gateway.yaml");
    std::fs::write(
        &conf,
        format!(
            "name: gw\nevent_server: {{embedded: {{store: memory, enable_devices: true}}}}\n\
             devices:\n  - {{module: {NAME}, name: d1, interval: 0.05}}\n\
             log: {{level: info, filter: \"{NAME}=debug\"}}\n"
        ),
    )
    .unwrap();
    let mut gateway = Proc::spawn(
        gateway_host()
            .arg("--conf")
            .arg(&conf)
            .arg("--plugins-dir")
            .arg(&dir.path),
    );
    let line = gateway.expect_line(Stream::Stderr, |l| l.contains("reading registered"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(
        line.contains(&format!(" {NAME}: ")),
        "target missing: {line}"
    );
    assert!(line.contains("device=d1"), "device span missing: {line}");
    assert!(line.contains("count=1"), "{line}");
    let created = gateway
        .seen
        .iter()
        .find(|(_, l)| l.contains("device created interval_s="))
        .map(|(_, l)| l.clone())
        .unwrap_or_else(|| panic!("no create record:\n{}", gateway.transcript()));
    assert!(
        created.contains("INFO") && created.contains("interval_s=0.05"),
        "{created}"
    );
    gateway.signal("TERM");
    assert_eq!(gateway.wait(), Some(0), "{}", gateway.transcript());
    let _ = std::fs::remove_dir_all(project.parent().unwrap());
}
