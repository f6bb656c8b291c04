//! Plugin file checks as sshd's StrictModes (issue 11 item 5): the file and every
//! directory up to `/` owned by root or the user running the host and not writable by
//! group or others; a sticky directory is accepted only above the plugin's own
//! directory; the refusal names the path, the fix and the override; the override
//! loads anyway.

#![allow(clippy::unwrap_used)]

mod plugin_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use gateway_host::plugins::{InsecureProblem, PluginError, PluginRegistry, PluginSearch};
use plugin_support::*;

/// uid 65534 (`nobody`): another user that is not root.
const OTHER_UID: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `<plugin dir>/<a>/<b>/libsim.so`, every directory 0755; returns (a, b, file).
fn nested(dir: &PluginDir) -> (PathBuf, PathBuf, PathBuf) {
    let a = dir.path.join("a");
    let b = a.join("b");
    std::fs::create_dir_all(&b).unwrap();
    chmod(&a, 0o755);
    chmod(&b, 0o755);
    let file = b.join("libsim.so");
    std::fs::copy(built_library("sim"), &file).unwrap();
    chmod(&file, 0o755);
    (a, b, file)
}

fn load(file: &Path, allow_insecure: bool) -> Result<String, PluginError> {
    let dir = file.parent().unwrap().to_owned();
    PluginRegistry::new(PluginSearch::new(vec![dir], allow_insecure))
        .load_file(file)
        .map(|plugin| plugin.info().device_type.clone())
}

fn refused(file: &Path) -> PluginError {
    let err = load(file, false).expect_err("must be refused");
    // The override loads it anyway.
    assert_eq!(load(file, true).unwrap(), "sim");
    err
}

/// The message names the path, the fix and the override (flag and config key).
fn assert_message(err: &PluginError, path: &Path, fix: &str) {
    let text = err.to_string();
    let path = path.canonicalize().unwrap();
    assert_eq!(err.path(), Some(path.as_path()), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(fix), "{text}");
    assert!(text.contains("--allow-insecure-plugins"), "{text}");
    assert!(text.contains("allow_insecure_plugins: true"), "{text}");
}

#[test]
fn a_clean_nested_path_loads() {
    let dir = PluginDir::new();
    let (_, _, file) = nested(&dir);
    assert_eq!(load(&file, false).unwrap(), "sim");
}

#[test]
fn a_world_writable_ancestor_directory_is_refused() {
    let dir = PluginDir::new();
    let (a, _, file) = nested(&dir);
    chmod(&a, 0o777);
    let err = refused(&file);
    assert!(
        matches!(
            err,
            PluginError::Insecure {
                what: "directory",
                problem: InsecureProblem::Writable { mode: 0o777 },
                ..
            }
        ),
        "{err}"
    );
    assert_message(&err, &a, "chmod go-w");
}

#[test]
fn a_group_writable_ancestor_directory_is_refused() {
    let dir = PluginDir::new();
    let (a, _, file) = nested(&dir);
    chmod(&a, 0o775);
    let err = refused(&file);
    assert_message(&err, &a, "chmod go-w");
}

#[test]
fn a_sticky_world_writable_ancestor_is_accepted_but_not_as_the_plugins_own_directory() {
    let dir = PluginDir::new();
    let (a, b, file) = nested(&dir);
    chmod(&a, 0o1777);
    assert_eq!(load(&file, false).unwrap(), "sim");
    // The file's own directory: other users could drop files into it.
    chmod(&a, 0o755);
    chmod(&b, 0o1777);
    let err = refused(&file);
    assert!(
        matches!(
            err,
            PluginError::Insecure {
                what: "directory",
                ..
            }
        ),
        "{err}"
    );
    assert_message(&err, &b, "chmod go-w");
    // And as a scanned plugin directory.
    let report = PluginRegistry::new(PluginSearch::new(vec![b.clone()], false)).scan();
    assert!(report.plugins.is_empty());
    assert!(
        matches!(report.failures[..], [PluginError::Insecure { .. }]),
        "{:?}",
        report.failures
    );
}

#[test]
fn a_file_or_directory_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    let dir = PluginDir::new();
    let (a, _, file) = nested(&dir);
    chown(&file, OTHER_UID);
    let err = refused(&file);
    assert!(
        matches!(
            err,
            PluginError::Insecure {
                what: "file",
                problem: InsecureProblem::Owner { uid: OTHER_UID, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_message(&err, &file, "chown root");
    chown(&file, 0);
    chown(&a, OTHER_UID);
    let err = refused(&file);
    assert!(
        matches!(
            err,
            PluginError::Insecure {
                what: "directory",
                problem: InsecureProblem::Owner { uid: OTHER_UID, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_message(&err, &a, "chown root");
    chown(&a, 0);
}

#[test]
fn a_symlink_is_checked_where_it_points() {
    let dir = PluginDir::new();
    let (a, _, file) = nested(&dir);
    let link = dir.path.join("libsim.so");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    chmod(&a, 0o777);
    let err = load(&link, false).expect_err("the target's directory is writable");
    assert_message(&err, &a, "chmod go-w");
}
