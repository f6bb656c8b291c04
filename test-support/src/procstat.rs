//! What benchmarks read off a running process from `/proc`: CPU seconds of a process
//! tree and peak resident set size.

/// (pid, ppid, user + system seconds) of every process.
fn all_stats() -> Vec<(u32, u32, f64)> {
    let mut stats = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return stats;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the command name: state, ppid, ..., utime (12th), stime (13th).
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(utime), Some(stime)) =
            (fields.get(1), fields.get(11), fields.get(12))
        else {
            continue;
        };
        let (Ok(ppid), Ok(utime), Ok(stime)) =
            (ppid.parse(), utime.parse::<f64>(), stime.parse::<f64>())
        else {
            continue;
        };
        // USER_HZ is 100 on every Linux architecture.
        stats.push((pid, ppid, (utime + stime) / 100.0));
    }
    stats
}

/// User + system CPU seconds of `pid` and all its living descendants.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let stats = all_stats();
    let mut tree = vec![pid];
    let mut total = 0.0;
    while let Some(p) = tree.pop() {
        for (child, parent, cpu) in &stats {
            if *child == p {
                total += cpu;
            }
            if *parent == p {
                tree.push(*child);
            }
        }
    }
    total
}

/// Peak resident set size (VmHWM) of `pid` in MiB; 0 when it cannot be read.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
