//! The process's own resource use, read from `/proc/self` at every scrape.

/// One reading; a value the system does not give is `None` (and not exported).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ProcessSample {
    /// Resident set size (`VmRSS` of `/proc/self/status`).
    pub(crate) rss_bytes: Option<u64>,
    /// User and system CPU time (`utime` + `stime` of `/proc/self/stat`).
    pub(crate) cpu_seconds: Option<f64>,
    /// Entries of `/proc/self/fd`.
    pub(crate) open_fds: Option<u64>,
}

/// Reads the process's RSS, CPU time and open file descriptors.
pub(crate) fn sample() -> ProcessSample {
    ProcessSample {
        rss_bytes: std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_rss(&s)),
        cpu_seconds: std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_cpu_ticks(&s))
            .and_then(|ticks| clock_ticks().map(|hz| ticks as f64 / hz)),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
    }
}

/// `VmRSS:   1234 kB` in bytes.
fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `utime + stime` (fields 14 and 15) of `/proc/self/stat`, in clock ticks. The
/// command name (field 2) may hold spaces and parentheses: fields are counted after
/// its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, the 12th of `rest`.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(unix)]
fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then_some(hz as f64)
}

#[cfg(not(unix))]
fn clock_ticks() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            parse_rss("Name:\tx\nVmRSS:\t    2048 kB\nVmSwap: 0 kB\n"),
            Some(2048 * 1024)
        );
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        let sample = sample();
        assert!(sample.rss_bytes.unwrap() > 0);
        assert!(sample.open_fds.unwrap() > 2);
        assert!(sample.cpu_seconds.is_some());
    }
}
