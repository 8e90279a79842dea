//! What a process costs, from Linux's `/proc`: CPU seconds, resident memory, open descriptors.
//! Read for the server (by pid) and for the tool itself, so the tool can tell when it, and not
//! the server, is the bottleneck.

use std::collections::HashSet;
use std::path::Path;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux fixes USER_HZ at 100 in its ABI
/// whatever the kernel's internal HZ (`getconf CLK_TCK` says 100), so no syscall is needed.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User plus system CPU time so far, all threads (dead ones included), in seconds.
    pub cpu_s: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Open file descriptors (sockets included); 0 when not readable.
    pub fds: usize,
    /// Threads now.
    pub threads: u64,
}

/// Reads `/proc/<pid>` (`None` for our own process, through `/proc/self`).
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of proc(5), so field n is at index n - 3.
    let ticks = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let cpu_ticks = ticks(14)? + ticks(15)?;
    let threads = ticks(20).unwrap_or(0);
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("{dir}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    Some(ProcSample {
        cpu_s: cpu_ticks as f64 / TICKS_PER_SECOND,
        rss_bytes: rss_kb * 1024,
        fds,
        threads,
    })
}

/// CPU seconds the whole machine spent busy so far (every core, every process, steal
/// included), from the first line of `/proc/stat`. Set against the server's and the tool's own
/// CPU, it shows how much of the machine something else was using: on a shared machine, the
/// difference between a clean measurement and a noisy one.
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle) as f64 / TICKS_PER_SECOND)
}

/// Cores of the machine (online ones, as `/proc/stat` lists them).
pub fn machine_cores() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How many CPUs a process may run on (its affinity mask, as `taskset` sets it).
pub fn allowed_cpus(pid: Option<u32>) -> usize {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    std::fs::read_to_string(format!("{dir}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(count_cpu_list)
        })
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Counts a CPU list such as `0-3,6`.
fn count_cpu_list(list: &str) -> usize {
    list.trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(part.parse::<usize>().is_ok()),
        })
        .sum()
}

/// The process listening on TCP `port` (any address), found through the socket's inode in
/// `/proc/net/tcp{,6}` and the descriptors of every process we may read. Not us.
pub fn find_listener(port: u16) -> Option<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if holds_socket(&entry.path(), &inodes) {
            return Some(pid);
        }
    }
    None
}

fn listening_inodes(port: u16) -> HashSet<String> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is ip:port in hex; st 0A is LISTEN; inode is the tenth column.
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let listening_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && listening_port == Some(port) {
                inodes.insert((*inode).to_owned());
            }
        }
    }
    inodes
}

fn holds_socket(proc_dir: &Path, inodes: &HashSet<String>) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| {
                let t = target.to_string_lossy().into_owned();
                t.strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .map(|inode| inodes.contains(inode))
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(count_cpu_list("0-1\n"), 2);
        assert_eq!(count_cpu_list("0-3,6,8-9"), 7);
        assert_eq!(count_cpu_list("1"), 1);
    }

    #[test]
    fn our_own_process_can_be_read_and_found_by_its_listening_port() {
        let me = sample(None).expect("/proc/self");
        assert!(me.rss_bytes > 0 && me.fds > 0 && me.threads >= 1);
        assert!(machine_busy_s().is_some_and(|s| s > 0.0));
        assert!(loadavg().is_some());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(!listening_inodes(port).is_empty());
        // find_listener skips the caller by design, so look for the socket directly.
        assert!(holds_socket(
            Path::new("/proc/self"),
            &listening_inodes(port)
        ));
    }
}
