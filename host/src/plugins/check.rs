//! Checks made before a file is handed to the dynamic loader: permissions (like
//! sshd's StrictModes) and the ELF header (is it a shared library for this machine?).

use std::io::Read as _;
use std::path::Path;

#[cfg(unix)]
use super::error::InsecureProblem;
use super::PluginError;

/// sshd's StrictModes for a plugin file or a plugin directory (OpenSSH's `safe_path`,
/// which `auth.c`'s `secure_filename` uses): `path` and every directory above it up to
/// `/` must be owned by root or by the user running the host and must not be writable
/// by group or others; a file must be a regular file. Anyone who can write any of them
/// can make the host load code of their choosing.
///
/// One difference from sshd, on purpose: sshd refuses every group/world-writable
/// directory, sticky ones (`/tmp`, mode 1777) included. Here a sticky directory is
/// accepted *above* the checked path (never as `path` itself or as a plugin file's own
/// directory): other users cannot rename or remove what they do not own in a sticky
/// directory, and the entry below it is itself checked for its owner and mode, so it
/// cannot be swapped. That keeps a plugin directory such as `/tmp/plugins` (owned by
/// the user, mode 0755) usable, while `/tmp` itself as a plugin directory is refused.
///
/// `path` must be canonical (no symlinks), as the registry passes it.
#[cfg(unix)]
pub(crate) fn permissions(path: &Path, what: &'static str) -> Result<(), PluginError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    check_path(path, what, me)?;
    // A plugin file's own directory is a directory other users could add files to:
    // checked like the file, with no sticky allowance.
    let mut strict_parent = what == "file";
    for dir in path.ancestors().skip(1) {
        check_dir(dir, me, !strict_parent)?;
        strict_parent = false;
    }
    Ok(())
}

/// Checks one path: regular file (for a file), owner, group/other write bits.
#[cfg(unix)]
fn check_path(path: &Path, what: &'static str, me: u32) -> Result<(), PluginError> {
    let metadata = stat(path)?;
    if what == "file" && !metadata.is_file() {
        return Err(insecure(path, what, InsecureProblem::NotRegularFile));
    }
    owner_and_mode(path, what, &metadata, me, false)
}

#[cfg(unix)]
fn check_dir(dir: &Path, me: u32, sticky_allowed: bool) -> Result<(), PluginError> {
    let metadata = stat(dir)?;
    owner_and_mode(dir, "directory", &metadata, me, sticky_allowed)
}

#[cfg(unix)]
fn owner_and_mode(
    path: &Path,
    what: &'static str,
    metadata: &std::fs::Metadata,
    me: u32,
    sticky_allowed: bool,
) -> Result<(), PluginError> {
    use std::os::unix::fs::MetadataExt as _;
    let uid = metadata.uid();
    if uid != 0 && uid != me {
        return Err(insecure(
            path,
            what,
            InsecureProblem::Owner { uid, host_uid: me },
        ));
    }
    let mode = metadata.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0 && metadata.is_dir();
    if mode & 0o022 != 0 && !(sticky && sticky_allowed) {
        return Err(insecure(path, what, InsecureProblem::Writable { mode }));
    }
    Ok(())
}

#[cfg(unix)]
fn stat(path: &Path) -> Result<std::fs::Metadata, PluginError> {
    std::fs::metadata(path).map_err(|source| PluginError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn insecure(path: &Path, what: &'static str, problem: InsecureProblem) -> PluginError {
    PluginError::Insecure {
        path: path.to_owned(),
        what,
        problem,
    }
}

/// Permission bits are not checked on this platform.
#[cfg(not(unix))]
pub(crate) fn permissions(_path: &Path, _what: &'static str) -> Result<(), PluginError> {
    Ok(())
}

/// ELF header fields this module reads.
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ET_DYN: u16 = 3;

/// `e_machine` of the host, with a name for messages.
fn host_machine() -> (u16, &'static str) {
    if cfg!(target_arch = "x86_64") {
        (62, "x86_64")
    } else if cfg!(target_arch = "aarch64") {
        (183, "aarch64")
    } else if cfg!(target_arch = "x86") {
        (3, "x86")
    } else if cfg!(target_arch = "arm") {
        (40, "arm")
    } else if cfg!(target_arch = "riscv64") || cfg!(target_arch = "riscv32") {
        (243, "riscv")
    } else if cfg!(target_arch = "powerpc64") {
        (21, "powerpc64")
    } else if cfg!(target_arch = "powerpc") {
        (20, "powerpc")
    } else if cfg!(target_arch = "s390x") {
        (22, "s390x")
    } else if cfg!(target_arch = "loongarch64") {
        (258, "loongarch64")
    } else {
        (0, "unknown")
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        3 => "x86".to_owned(),
        8 => "mips".to_owned(),
        20 => "powerpc".to_owned(),
        21 => "powerpc64".to_owned(),
        22 => "s390x".to_owned(),
        40 => "arm".to_owned(),
        62 => "x86_64".to_owned(),
        183 => "aarch64".to_owned(),
        243 => "riscv".to_owned(),
        258 => "loongarch64".to_owned(),
        other => format!("ELF machine {other}"),
    }
}

fn bits(class: u8) -> &'static str {
    match class {
        1 => "32-bit",
        2 => "64-bit",
        _ => "unknown-class",
    }
}

fn endian(data: u8) -> &'static str {
    match data {
        1 => "little-endian",
        2 => "big-endian",
        _ => "unknown-endian",
    }
}

/// Checks that `path` is an ELF shared library for this machine. Reads only the
/// first 20 bytes; nothing of the file is run.
pub(crate) fn elf_header(path: &Path) -> Result<(), PluginError> {
    let mut header = [0u8; 20];
    let mut file = std::fs::File::open(path).map_err(|source| PluginError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(PluginError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    check_elf_header(path, &header[..filled])
}

/// The header checks of [`elf_header`] on bytes already read.
pub(crate) fn check_elf_header(path: &Path, header: &[u8]) -> Result<(), PluginError> {
    let not_library = |reason: &str| PluginError::NotSharedLibrary {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if header.len() < 20 || header[..4] != ELF_MAGIC {
        return Err(not_library("the file is not an ELF object"));
    }
    let (class, data) = (header[4], header[5]);
    let read_u16 = |at: usize| {
        let bytes = [header[at], header[at + 1]];
        if data == 2 {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        }
    };
    let (host_machine, host_name) = host_machine();
    let host_class = if cfg!(target_pointer_width = "64") {
        2
    } else {
        1
    };
    let host_data = if cfg!(target_endian = "big") { 2 } else { 1 };
    let machine = read_u16(18);
    if class != host_class || data != host_data || (host_machine != 0 && machine != host_machine) {
        return Err(PluginError::WrongArchitecture {
            path: path.to_owned(),
            found: format!("{} {} {}", bits(class), endian(data), machine_name(machine)),
            expected: format!("{} {} {host_name}", bits(host_class), endian(host_data)),
        });
    }
    match read_u16(16) {
        ET_DYN => Ok(()),
        1 => Err(not_library("it is an ELF relocatable object (.o)")),
        2 => Err(not_library("it is an ELF executable")),
        4 => Err(not_library("it is an ELF core dump")),
        other => Err(not_library(&format!("ELF file of type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, e_type: u16, machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', class, data, 1];
        h.resize(16, 0);
        if data == 2 {
            h.extend(e_type.to_be_bytes());
            h.extend(machine.to_be_bytes());
        } else {
            h.extend(e_type.to_le_bytes());
            h.extend(machine.to_le_bytes());
        }
        h
    }

    fn native(e_type: u16) -> Vec<u8> {
        let class = if cfg!(target_pointer_width = "64") {
            2
        } else {
            1
        };
        let data = if cfg!(target_endian = "big") { 2 } else { 1 };
        header(class, data, e_type, host_machine().0)
    }

    #[test]
    fn accepts_a_native_shared_library() {
        check_elf_header(Path::new("x.so"), &native(ET_DYN)).unwrap();
    }

    #[test]
    fn rejects_text_and_short_files() {
        for bytes in [&b"hello world, not a library"[..], &b"\x7fELF"[..], &[][..]] {
            let err = check_elf_header(Path::new("x.so"), bytes).unwrap_err();
            assert!(matches!(err, PluginError::NotSharedLibrary { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_executables() {
        let err = check_elf_header(Path::new("x.so"), &native(2)).unwrap_err();
        assert!(err.to_string().contains("ELF executable"), "{err}");
    }

    #[test]
    fn rejects_other_machines_and_classes() {
        let (machine, _) = host_machine();
        let other = if machine == 183 { 62 } else { 183 };
        let class = if cfg!(target_pointer_width = "64") {
            2
        } else {
            1
        };
        let err =
            check_elf_header(Path::new("arm.so"), &header(class, 1, ET_DYN, other)).unwrap_err();
        assert!(
            matches!(err, PluginError::WrongArchitecture { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("arm.so"), "{err}");
        let err = check_elf_header(Path::new("x.so"), &header(3 - class, 1, ET_DYN, machine))
            .unwrap_err();
        assert!(
            matches!(err, PluginError::WrongArchitecture { .. }),
            "{err}"
        );
    }
}
