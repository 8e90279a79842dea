//! The progress line: once a second on stderr, so a long run shows it is alive, how far the
//! joins got, and whether the server or the tool is running out of CPU before the report says so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

use crate::procfs;

/// What the scenario reports about itself each second.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub joined: usize,
    pub failed: usize,
    pub planned: usize,
    /// Participants in the session now, when that differs from `joined` (churn).
    pub present: Option<usize>,
    /// Packets and bytes received so far by every participant of the tool, when the scenario
    /// keeps them all (churn does not: visitors take their counters with them).
    pub rx: Option<(u64, u64)>,
}

/// A running progress printer; stops when dropped.
pub struct Progress {
    phase: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Prints a line every second until dropped, calling `status` for the scenario's part.
    pub fn start(server_pid: Option<u32>, status: impl Fn() -> Status + Send + 'static) -> Self {
        let phase = Arc::new(Mutex::new("joining".to_owned()));
        let shown = Arc::clone(&phase);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last: Option<(Instant, Status, f64, f64)> = None;
            // Runs until the owner drops it (abort); each round is one second.
            loop {
                ticker.tick().await;
                let now = Instant::now();
                let s = status();
                let server_cpu = server_pid
                    .and_then(|pid| procfs::sample(Some(pid)))
                    .map(|p| (p.cpu_s, p.rss_bytes));
                let tool_cpu = procfs::sample(None).map(|p| p.cpu_s).unwrap_or(0.0);
                let phase = shown.lock().map(|p| p.clone()).unwrap_or_default();
                let mut line = format!(
                    "[{:>4}s {phase:<8}] joined {}/{} failed {}",
                    started.elapsed().as_secs(),
                    s.joined,
                    s.planned,
                    s.failed
                );
                if let Some(present) = s.present {
                    line += &format!(" present {present:>3}");
                }
                if let Some((then, prev, prev_server, prev_tool)) = &last {
                    let dt = now.duration_since(*then).as_secs_f64().max(1e-3);
                    if let (Some((packets, bytes)), Some((prev_packets, prev_bytes))) =
                        (s.rx, prev.rx)
                    {
                        let pps = packets.saturating_sub(prev_packets) as f64 / dt;
                        let mbps = bytes.saturating_sub(prev_bytes) as f64 * 8.0 / dt / 1e6;
                        line += &format!(" | rx {pps:>7.0} pkt/s {mbps:>7.1} Mbit/s");
                    }
                    if let Some((cpu, rss)) = server_cpu {
                        let pct = (cpu - prev_server) / dt * 100.0;
                        line +=
                            &format!(" | server cpu {pct:>4.0}% rss {:>5.0} MB", rss as f64 / 1e6);
                    }
                    line += &format!(" | tool cpu {:>4.0}%", (tool_cpu - prev_tool) / dt * 100.0);
                }
                eprintln!("{line}");
                let server_s = server_cpu.map(|(c, _)| c).unwrap_or(0.0);
                last = Some((now, s, server_s, tool_cpu));
            }
        });
        Self { phase, task }
    }

    /// Names the phase shown (joining, warm-up, measure, leaving).
    pub fn phase(&self, name: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = name.to_owned();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
