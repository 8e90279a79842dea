//! A run of the meeting, live or audio scenario: create the sessions, join everyone at the set
//! rate (publishers of a room before its receivers), warm up, measure, leave. Every phase is
//! bounded in time, so the tool always stops by itself and leaves the server as it found it.

use anyhow::{Context, bail};
use hearth_client::{ClientError, JoinOptions, Key, Participant, SignalError};
use hearth_proto::{ErrorCode, SessionId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

use crate::http::{self, Session};
use crate::measure::{self, Reading};
use crate::metrics::Metrics;
use crate::plan::{self, Link, Room, Slot};
use crate::progress::{Progress, Status};
use crate::report::{Participants, Report, Tracks};
use crate::{RunArgs, Scenario, churn, floor, procfs, report};

/// Longer than the client's own timeouts (10 s for `joined`, 10 s for `publish_answer`): a
/// join that takes this long is stuck, and counted as failed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(40);
/// How long everyone gets to leave before the tool stops waiting.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every run shares.
pub struct Env {
    pub args: RunArgs,
    pub server_pid: Option<u32>,
    pub server_cpus: usize,
    pub tool_cpus: usize,
}

/// A joined participant and what its join time is measured against.
pub struct Member {
    pub participant: Participant,
    /// When the first publisher of its room was sending: a join that began earlier had nothing
    /// to receive yet, so its time to first packet says nothing about joining.
    pub room_ready: Arc<OnceLock<Instant>>,
}

/// Failed joins by reason, shared by the join tasks.
pub type Failures = Arc<Mutex<BTreeMap<String, usize>>>;

/// Runs the scenario `args.runs` times, then prints the table (and writes JSON).
pub async fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let health = http::request(&args.server, "GET", "/healthz", None, None)
        .await
        .with_context(|| format!("is a Hearth server running at {}?", args.server))?;
    if health.status != 200 {
        bail!("{}/healthz answered {}", args.server, health.status);
    }
    let server_pid = match args.server_pid {
        Some(pid) => Some(pid),
        None => procfs::find_listener(http::port(&args.server)?),
    };
    match server_pid {
        Some(pid) => eprintln!("server process: pid {pid}"),
        None => eprintln!(
            "server process not found (pass --server-pid): its CPU and memory are not reported"
        ),
    }
    let env = Env {
        server_cpus: server_pid.map_or(0, |pid| procfs::allowed_cpus(Some(pid))),
        tool_cpus: procfs::allowed_cpus(None),
        server_pid,
        args,
    };
    let runs = env.args.runs.max(1);
    let mut reports = Vec::new();
    for run in 0..runs {
        eprintln!("== run {}/{runs}: {:?} ==", run + 1, env.args.scenario);
        let report = match env.args.scenario {
            Scenario::Churn => churn::run(&env).await?,
            _ => run_once(&env).await?,
        };
        reports.push(report);
        if run + 1 < runs {
            // Let the server finish closing the last run's connections before the next.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    let floor = match env.args.floor_us {
        Some(us) => us,
        None => {
            eprintln!("measuring the floor (SRTP protect + UDP send)...");
            let f = tokio::task::spawn_blocking(|| floor::measure(5, 20_000)).await??;
            f.floor_us
        }
    };
    for r in &mut reports {
        if let Some(s) = &mut r.server {
            s.x_floor = s.cpu_us_per_packet.map(|us| us / floor);
        }
    }
    println!("{}", report::table(&reports));
    println!("floor (SRTP protect + UDP send): {floor:.3} µs/packet");
    if let Some(path) = &env.args.json {
        // The flags as given, minus the API key: reports get shared, secrets must not.
        let mut shown = env.args.clone();
        shown.api_key = shown.api_key.map(|_| "<redacted>".to_owned());
        shown.clip = None;
        let json = serde_json::json!({
            "scenario": format!("{:?}", env.args.scenario).to_lowercase(),
            "args": format!("{shown:?}"),
            "floor_us": floor,
            "runs": reports,
            "median": report::medians(&reports),
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One run of a meeting, live or audio scenario.
async fn run_once(env: &Env) -> anyhow::Result<Report> {
    let args = &env.args;
    let rooms = plan::plan(args);
    let mut sessions = Vec::new();
    for room in &rooms {
        sessions.push(open_session(env, room).await?);
    }
    let planned: usize = rooms.iter().map(|r| r.members.len()).sum();
    let members: Arc<Mutex<Vec<Member>>> = Arc::default();
    let failures: Failures = Arc::default();
    let progress = Progress::start(env.server_pid, {
        let members = Arc::clone(&members);
        let failures = Arc::clone(&failures);
        move || {
            let traffic = traffic_of(&members);
            Status {
                joined: traffic.len(),
                failed: failures.lock().map(|f| f.values().sum()).unwrap_or(0),
                planned,
                present: None,
                rx: Some(measure::totals(&traffic)),
            }
        }
    });
    let idle = reading(env, &members).await;
    join_all(env, &rooms, &sessions, &members, &failures).await;
    if args.record {
        for (session, _) in &sessions {
            recording(env, session, "POST").await?;
        }
    }
    progress.phase("warm-up");
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    progress.phase("measure");
    let start = reading(env, &members).await;
    tokio::time::sleep(Duration::from_secs(args.duration.max(1))).await;
    let end = reading(env, &members).await;
    if args.record {
        for (session, _) in &sessions {
            recording(env, session, "DELETE").await?;
        }
    }
    progress.phase("leaving");
    let joined = std::mem::take(&mut *members.lock().unwrap_or_else(|e| e.into_inner()));
    let join_ms = join_times(&joined, &end);
    leave_all(joined.into_iter().map(|m| m.participant).collect()).await;
    // The last leaves' notices are still going out as the sockets close.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = Metrics::scrape(&args.server).await;
    drop(progress);

    let secs = end.at.duration_since(start.at).as_secs_f64();
    let window = measure::media_window(&start.traffic, &end.traffic);
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    let mut report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        measured_s: secs,
        participants: Participants {
            planned,
            joined: end.traffic.len(),
            failed: failures.values().sum(),
        },
        failures,
        tracks: Tracks {
            received: window.tracks_received,
            expected: rooms
                .iter()
                .flat_map(|r| &r.members)
                .map(|m| m.expects_tracks)
                .sum(),
        },
        join_ms: measure::quantiles(&join_ms),
        server: measure::server_cost(
            env.server_pid,
            env.server_cpus,
            &start,
            &end,
            window.packets_received,
        ),
        metrics: match (&start.metrics, &end.metrics) {
            (Some(a), Some(b)) => b.window(a),
            _ => BTreeMap::new(),
        },
        tool: measure::tool_cost(env.tool_cpus, &start, &end),
        machine: measure::machine_load(&start, &end),
        signaling: Some(measure::signaling(
            &end.traffic,
            idle.metrics.as_ref(),
            left.as_ref(),
        )),
        ..Report::default()
    };
    if let Some(server) = report.server.as_mut() {
        measure::track_memory(server, &idle, &end);
    }
    report.set_media(&window, secs);
    report.add_warnings();
    if args.clip.is_some() {
        report.note_real_media();
    }
    Ok(report)
}

/// Starts (`POST`) or stops (`DELETE`) recording `session`.
async fn recording(env: &Env, session: &http::Session, method: &str) -> anyhow::Result<()> {
    let path = format!("/api/sessions/{}/recording", session.id);
    let response = http::request(
        &env.args.server,
        method,
        &path,
        None,
        Some(&session.host_key),
    )
    .await?;
    if !(200..300).contains(&response.status) {
        bail!("{method} {path}: {} {}", response.status, response.body);
    }
    Ok(())
}

/// Creates a room's session, sized for its members (the server caps it at its
/// `--max-participants`).
pub async fn open_session(env: &Env, room: &Room) -> anyhow::Result<(Session, Option<String>)> {
    let args = &env.args;
    let session = http::create_session(
        &args.server,
        &room.title,
        room.shape,
        room.members.len(),
        args.api_key.as_deref(),
    )
    .await?;
    let speaker = if room.needs_speaker_invite() {
        Some(http::mint_invite(&args.server, &session, "speaker").await?)
    } else {
        None
    };
    Ok((session, speaker))
}

/// Reads every member's counters, the server's /proc and /metrics, and our own /proc.
async fn reading(env: &Env, members: &Mutex<Vec<Member>>) -> Reading {
    let metrics = Metrics::scrape(&env.args.server).await;
    Reading::now(env.server_pid, traffic_of(members), metrics)
}

fn traffic_of(members: &Mutex<Vec<Member>>) -> Vec<hearth_client::Traffic> {
    let members = members.lock().unwrap_or_else(|e| e.into_inner());
    members.iter().map(|m| m.participant.traffic()).collect()
}

/// Joins every member at `--join-rate`, each in its own task so a slow join never delays the
/// pace; a room's receivers start once its publishers are in, so their join time measures
/// joining, not waiting for someone to publish.
async fn join_all(
    env: &Env,
    rooms: &[Room],
    sessions: &[(Session, Option<String>)],
    members: &Arc<Mutex<Vec<Member>>>,
    failures: &Failures,
) {
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64(1.0 / env.args.join_rate.max(0.01)));
    let mut all = Vec::new();
    for (room, (session, speaker)) in rooms.iter().zip(sessions) {
        let ready = Arc::new(OnceLock::new());
        let mut publishers = Vec::new();
        for slot in &room.members {
            if slot.publish.is_none() {
                // Bounded: each join task gives up after JOIN_TIMEOUT.
                for task in publishers.drain(..) {
                    let _ = task.await;
                }
            }
            ticker.tick().await;
            let key = match slot.link {
                Link::Host => Key::Host(session.host_key.clone()),
                Link::Invite => Key::Invite(session.invite_key.clone()),
                Link::Speaker => Key::Invite(speaker.clone().unwrap_or_default()),
            };
            let task = tokio::spawn(join_one(
                env.args.server.clone(),
                SessionId::from_string(session.id.clone()),
                slot.clone(),
                key,
                env.args.bind_ip,
                Arc::clone(&ready),
                Arc::clone(members),
                Arc::clone(failures),
            ));
            if slot.publish.is_some() {
                publishers.push(task);
            } else {
                all.push(task);
            }
        }
        // The next room's joins need not wait for this room's publishers.
        all.append(&mut publishers);
    }
    for task in all {
        let _ = task.await;
    }
}

/// Joins (and publishes, for a publishing slot) one member, recording it or its failure.
#[allow(clippy::too_many_arguments)] // One spawned task's whole context, passed by value.
async fn join_one(
    base: String,
    session: SessionId,
    slot: Slot,
    key: Key,
    bind_ip: std::net::IpAddr,
    ready: Arc<OnceLock<Instant>>,
    members: Arc<Mutex<Vec<Member>>>,
    failures: Failures,
) {
    let options = JoinOptions {
        receive_only: slot.publish.is_none(),
        ..JoinOptions::default()
    };
    let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
        let mut p =
            Participant::join_with(&base, &session, &slot.name, key, bind_ip, options).await?;
        if let Some(publish) = slot.publish {
            p.publish_with(publish).await?;
            ready.get_or_init(Instant::now);
        }
        Ok::<_, ClientError>(p)
    })
    .await;
    match joined {
        Ok(Ok(participant)) => members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Member {
                participant,
                room_ready: ready,
            }),
        Ok(Err(e)) => record_failure(&failures, describe(&e)),
        Err(_) => record_failure(&failures, format!("no join within {JOIN_TIMEOUT:?}")),
    }
}

/// Counts a failed join; the first of each kind is told at once, with a hint when the server's
/// limits are the cause.
pub fn record_failure(failures: &Failures, reason: String) {
    let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
    let n = f.entry(reason.clone()).or_insert(0);
    if *n == 0 {
        eprintln!("join failed: {reason}");
    }
    *n += 1;
}

/// A join failure as a short reason, with the fix when it is a server limit.
pub fn describe(e: &ClientError) -> String {
    if e.http_status() == Some(429) {
        return "too_many_connections (HTTP 429). hint: the server limits WebSockets per \
                address; start it with e.g. `--max-connections-per-ip 2000`"
            .into();
    }
    match e {
        ClientError::Refused(ErrorCode::SessionFull, _) => "session_full. hint: the server caps \
            sessions at --max-participants; start it with e.g. `--max-participants 2000`"
            .into(),
        ClientError::Refused(code, _) => code.as_str().to_owned(),
        // The decoder's message carries sizes that differ per failure; the code alone groups
        // them (`message_too_large`: the server sent a frame over the protocol's 64 KiB).
        ClientError::Signal(SignalError::Decode(m)) => format!(
            "undecodable server message: {}",
            m.split(':').next().unwrap_or(m)
        ),
        other => other.to_string(),
    }
}

/// Join times (WebSocket connect to first media packet) of members that joined after their
/// room was publishing, in milliseconds.
fn join_times(members: &[Member], end: &Reading) -> Vec<f64> {
    members
        .iter()
        .zip(&end.traffic)
        .filter_map(|(m, t)| {
            let started = m.participant.join_started();
            let ready = *m.room_ready.get()?;
            if ready > started {
                return None;
            }
            let first = t
                .received
                .values()
                .filter_map(|r| r.first_packet_at)
                .min()?;
            Some(first.duration_since(started).as_secs_f64() * 1000.0)
        })
        .collect()
}

/// Everyone leaves politely, all at once, within [`LEAVE_TIMEOUT`]; stragglers are dropped
/// (which closes their sockets: the server sees a closed tab).
pub async fn leave_all(participants: Vec<Participant>) {
    let mut set = JoinSet::new();
    for p in participants {
        set.spawn(p.leave());
    }
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, async {
        while set.join_next().await.is_some() {}
    })
    .await;
}
