//! The churn scenario: one resident host publishes; others join at `--join-rate` for
//! `--duration` seconds, each staying `--stay` seconds and then leaving (every other one
//! without a word, like a closed tab). It measures join time under churn and whether the server
//! gives back what each visit took: descriptors and memory before and after.

use hearth_client::{ClientError, JoinOptions, Key, LatencyHistogram, Participant};
use hearth_proto::{MediaKind, SessionId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::load::{Env, Failures, describe, record_failure};
use crate::measure::{self, Reading};
use crate::metrics::{HEAP_ALLOCATED, Metrics, SUBSCRIBED_TRACKS};
use crate::procfs::{self, ProcSample};
use crate::progress::{Progress, Status};
use crate::report::{ChurnStats, MemorySample, Participants, Report, Tracks};
use crate::{http, plan};

/// Longer than the client's own join and publish timeouts.
const JOIN_TIMEOUT: Duration = Duration::from_secs(40);
/// Descriptors the server may hold above its starting count once everyone left (timers and
/// sockets still closing) before waiting for it stops.
const FD_SLACK: usize = 2;
/// How long the server gets to close everything after the last leave.
const SETTLE: Duration = Duration::from_secs(15);

/// What one visit saw.
#[derive(Debug, Default)]
struct Visit {
    join_ms: Option<f64>,
    got_host_media: bool,
    host_tracks: usize,
    packets_sent: u64,
    bytes_sent: u64,
    packets_received: u64,
    bytes_received: u64,
    corrupt: u64,
    audio_latency: LatencyHistogram,
    video_latency: LatencyHistogram,
}

/// Everything a churner task needs, cloned per task.
#[derive(Clone)]
struct Ctx {
    base: String,
    session: SessionId,
    invite: String,
    bind_ip: std::net::IpAddr,
    publish: Option<hearth_client::PublishOptions>,
    stay: Duration,
    host: String,
    visits: Arc<Mutex<Vec<Visit>>>,
    failures: Failures,
    active: Arc<AtomicUsize>,
}

/// One churn run.
pub async fn run(env: &Env) -> anyhow::Result<Report> {
    let args = &env.args;
    let stay = Duration::from_secs(args.stay.max(1));
    let rate = args.join_rate.max(0.01);
    // At most this many visitors at once: the steady state plus a join's worth of slack. It
    // bounds the tool's sockets, and sizes the session.
    let cap = ((rate * (stay.as_secs_f64() + 5.0)).ceil() as usize).max(1);
    let session = http::create_session(
        &args.server,
        "bench churn",
        "room",
        cap + 1,
        args.api_key.as_deref(),
    )
    .await?;
    let session_id = SessionId::from_string(session.id.clone());
    let mut host = Participant::join(
        &args.server,
        &session_id,
        "resident",
        Key::Host(session.host_key.clone()),
        args.bind_ip,
    )
    .await
    .map_err(|e| anyhow::anyhow!("the resident host could not join: {}", describe(&e)))?;
    host.publish_with(plan::av(args))
        .await
        .map_err(|e| anyhow::anyhow!("the resident host could not publish: {e}"))?;
    // Let the host's connections settle so the baseline is a server at rest with one guest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Reading::now(
        env.server_pid,
        vec![host.traffic()],
        Metrics::scrape(&args.server).await,
    );

    let ctx = Ctx {
        base: args.server.clone(),
        session: session_id,
        invite: session.invite_key.clone(),
        bind_ip: args.bind_ip,
        publish: (!args.churn_receive_only).then(|| plan::av(args)),
        stay,
        host: host.id().to_string(),
        visits: Arc::default(),
        failures: Arc::default(),
        active: Arc::default(),
    };
    let spawned = Arc::new(AtomicUsize::new(0));
    let progress = Progress::start(env.server_pid, {
        let (visits, failures, spawned, active) = (
            Arc::clone(&ctx.visits),
            Arc::clone(&ctx.failures),
            Arc::clone(&spawned),
            Arc::clone(&ctx.active),
        );
        move || Status {
            joined: visits.lock().map(|v| v.len()).unwrap_or(0),
            failed: failures.lock().map(|f| f.values().sum()).unwrap_or(0),
            planned: spawned.load(Ordering::Relaxed),
            present: Some(active.load(Ordering::Relaxed)),
            rx: None,
        }
    });
    progress.phase("churn");
    let deadline = Instant::now() + Duration::from_secs(args.duration.max(1));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::new();
    let mut skipped = 0usize;
    let churn_started = Instant::now();
    let sample_every = Duration::from_secs((args.duration / 20).max(5));
    let mut next_sample = churn_started + sample_every;
    let mut memory = Vec::new();
    // Bounded by the deadline.
    while Instant::now() < deadline {
        ticker.tick().await;
        if Instant::now() >= next_sample {
            next_sample += sample_every;
            if let Some(sample) = memory_sample(env, churn_started).await {
                memory.push(sample);
            }
        }
        if ctx.active.load(Ordering::Relaxed) >= cap {
            skipped += 1;
            continue;
        }
        ctx.active.fetch_add(1, Ordering::Relaxed);
        let i = spawned.fetch_add(1, Ordering::Relaxed);
        tasks.push(tokio::spawn(visit(i, ctx.clone())));
    }
    progress.phase("leaving");
    let _ = tokio::time::timeout(stay + JOIN_TIMEOUT + Duration::from_secs(10), async {
        for task in tasks {
            let _ = task.await;
        }
    })
    .await;
    let end = Reading::now(
        env.server_pid,
        vec![host.traffic()],
        Metrics::scrape(&args.server).await,
    );
    host.leave().await;
    let after = settle(env.server_pid, before.server).await;
    drop(progress);

    let visits = std::mem::take(&mut *ctx.visits.lock().unwrap_or_else(|e| e.into_inner()));
    let failures = ctx.failures.lock().map(|f| f.clone()).unwrap_or_default();
    let secs = end.at.duration_since(before.at).as_secs_f64();
    // The host's window plus every visit's whole stay; loss is not counted under churn (a
    // visitor's first packets race its own negotiation).
    let mut w = measure::media_window(&before.traffic, &end.traffic);
    w.packets_expected = 0;
    w.intact = 0;
    for v in &visits {
        w.packets_sent += v.packets_sent;
        w.bytes_sent += v.bytes_sent;
        w.packets_received += v.packets_received;
        w.bytes_received += v.bytes_received;
        w.corrupt += v.corrupt;
        w.receivers += usize::from(v.packets_received > 0);
        w.audio_latency.merge(&v.audio_latency);
        w.video_latency.merge(&v.video_latency);
    }
    let join_ms: Vec<f64> = visits.iter().filter_map(|v| v.join_ms).collect();
    let mut report = Report {
        scenario: "churn".into(),
        measured_s: secs,
        participants: Participants {
            planned: spawned.load(Ordering::Relaxed),
            joined: visits.len(),
            failed: failures.values().sum(),
        },
        failures,
        tracks: Tracks {
            received: visits.iter().map(|v| v.host_tracks).sum(),
            expected: 2 * visits.len(),
        },
        join_ms: measure::quantiles(&join_ms),
        server: measure::server_cost(
            env.server_pid,
            env.server_cpus,
            &before,
            &end,
            w.packets_received,
        ),
        metrics: match (&before.metrics, &end.metrics) {
            (Some(a), Some(b)) => b.window(a),
            _ => Default::default(),
        },
        tool: measure::tool_cost(env.tool_cpus, &before, &end),
        machine: measure::machine_load(&before, &end),
        churn: Some(churn_stats(&visits, before.server, after, memory)),
        ..Report::default()
    };
    report.set_media(&w, secs);
    if skipped > 0 {
        report.warnings.push(format!(
            "{skipped} joins skipped: {cap} visitors were already in (joins slower than expected)"
        ));
    }
    report.add_warnings();
    Ok(report)
}

/// The server's memory and subscribed tracks now, `started` being the start of the churn.
async fn memory_sample(env: &Env, started: Instant) -> Option<MemorySample> {
    let proc = procfs::sample(env.server_pid)?;
    let metrics = Metrics::scrape(&env.args.server).await;
    Some(MemorySample {
        at_s: started.elapsed().as_secs_f64(),
        rss_mb: proc.rss_bytes as f64 / 1e6,
        heap_mb: metrics
            .as_ref()
            .and_then(|m| m.get(HEAP_ALLOCATED))
            .map(|b| b / 1e6),
        subscribed_tracks: metrics.as_ref().and_then(|m| m.get(SUBSCRIBED_TRACKS)),
    })
}

fn churn_stats(
    visits: &[Visit],
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    memory: Vec<MemorySample>,
) -> ChurnStats {
    let (b, a) = (before.unwrap_or_default(), after.unwrap_or_default());
    // Warm-up: the first quarter of the churn (allocator pools and caches fill up there).
    let span = memory.last().map_or(0.0, |m| m.at_s);
    let steady: Vec<&MemorySample> = memory.iter().filter(|m| m.at_s >= span / 4.0).collect();
    let growth = match (steady.first(), steady.last()) {
        (Some(first), Some(last)) if steady.len() >= 2 => Some(last.rss_mb - first.rss_mb),
        _ => None,
    };
    let second_half: Vec<&MemorySample> = memory.iter().filter(|m| m.at_s >= span / 2.0).collect();
    let trend = |value: fn(&MemorySample) -> Option<f64>| {
        let points: Vec<(f64, f64)> = second_half
            .iter()
            .filter_map(|m| Some((m.at_s / 60.0, value(m)?)))
            .collect();
        slope(&points)
    };
    ChurnStats {
        rss_mb_per_min_second_half: trend(|m| Some(m.rss_mb)),
        heap_mb_per_min_second_half: trend(|m| m.heap_mb),
        heap_mb_after_warmup: steady.first().and_then(|m| m.heap_mb),
        heap_mb_end_of_churn: memory.last().and_then(|m| m.heap_mb),
        peak_subscribed_tracks: memory
            .iter()
            .filter_map(|m| m.subscribed_tracks)
            .reduce(f64::max),
        rss_mb_after_warmup: steady.first().map(|m| m.rss_mb),
        rss_mb_end_of_churn: memory.last().map(|m| m.rss_mb),
        rss_mb_growth_after_warmup: growth,
        memory,
        joins: visits.len(),
        leaves: visits.len(),
        got_host_media: visits.iter().filter(|v| v.got_host_media).count(),
        server_fds_before: b.fds,
        server_fds_after: a.fds,
        server_rss_mb_before: b.rss_bytes as f64 / 1e6,
        server_rss_mb_after: a.rss_bytes as f64 / 1e6,
    }
}

/// The least-squares slope of `points` (x, y); `None` for fewer than three points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if spread == 0.0 {
        return None;
    }
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    Some(covariance / spread)
}

/// Waits (up to [`SETTLE`]) for the server's descriptors to come back to `before`; returns the
/// last reading either way, so a leak shows in the report rather than hanging the tool.
async fn settle(pid: Option<u32>, before: Option<ProcSample>) -> Option<ProcSample> {
    let pid = pid?;
    let target = before.map_or(0, |b| b.fds) + FD_SLACK;
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = procfs::sample(Some(pid));
        if now.is_none_or(|s| s.fds <= target) || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One visitor: join (and publish), stay, note what arrived, leave.
async fn visit(i: usize, ctx: Ctx) {
    let options = JoinOptions {
        receive_only: ctx.publish.is_none(),
        ..JoinOptions::default()
    };
    let name = format!("visitor-{i}");
    let key = Key::Invite(ctx.invite.clone());
    let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
        let mut p =
            Participant::join_with(&ctx.base, &ctx.session, &name, key, ctx.bind_ip, options)
                .await?;
        if let Some(publish) = ctx.publish {
            p.publish_with(publish).await?;
        }
        Ok::<_, ClientError>(p)
    })
    .await;
    let p = match joined {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            record_failure(&ctx.failures, describe(&e));
            ctx.active.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            record_failure(&ctx.failures, format!("no join within {JOIN_TIMEOUT:?}"));
            ctx.active.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    };
    let started = p.join_started();
    tokio::time::sleep_until((started + ctx.stay).into()).await;
    let t = p.traffic();
    let mut v = Visit {
        packets_sent: t.packets_sent,
        bytes_sent: t.bytes_sent,
        ..Visit::default()
    };
    let mut first_from_host: Option<Instant> = None;
    for r in t.received.values() {
        v.packets_received += r.packets;
        v.bytes_received += r.bytes;
        v.corrupt += r.corrupt;
        match r.kind {
            Some(MediaKind::Video) => v.video_latency.merge(&r.latency_us),
            _ => v.audio_latency.merge(&r.latency_us),
        }
        if r.from == ctx.host && r.intact > 0 {
            v.host_tracks += 1;
            first_from_host = match (first_from_host, r.first_packet_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    v.got_host_media = v.host_tracks >= 2;
    v.join_ms = first_from_host.map(|f| f.duration_since(started).as_secs_f64() * 1000.0);
    // Half leave politely, half vanish like a closed tab: the server must clean up after both.
    if i.is_multiple_of(2) {
        p.leave().await;
    } else {
        p.vanish().await;
    }
    ctx.visits.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    ctx.active.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_climb_shows_as_its_rate_and_a_flat_line_as_zero() {
        let climb: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 50.0 + 0.5 * f64::from(i)))
            .collect();
        assert!((slope(&climb).unwrap() - 0.5).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 76.6)).collect();
        assert_eq!(slope(&flat), Some(0.0));
        assert_eq!(
            slope(&flat[..2]),
            None,
            "two points say nothing about a trend"
        );
    }

    #[test]
    fn the_busiest_sample_and_the_second_half_trend_are_reported() {
        let memory: Vec<MemorySample> = [
            (30.0, 60.0, 220.0),
            (60.0, 61.0, 312.0),
            (90.0, 61.0, 220.0),
            (120.0, 61.0, 200.0),
            (150.0, 61.0, 220.0),
        ]
        .iter()
        .map(|&(at_s, rss_mb, tracks)| MemorySample {
            at_s,
            rss_mb,
            heap_mb: Some(rss_mb / 2.0),
            subscribed_tracks: Some(tracks),
        })
        .collect();
        let stats = churn_stats(&[], None, None, memory);
        assert_eq!(stats.peak_subscribed_tracks, Some(312.0));
        assert_eq!(stats.rss_mb_per_min_second_half, Some(0.0));
        assert_eq!(stats.heap_mb_per_min_second_half, Some(0.0));
        assert_eq!(stats.heap_mb_after_warmup, Some(30.5));
    }
}
