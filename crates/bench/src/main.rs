//! `hearth-bench`: the load tool. `run` drives a running Hearth server through the real
//! protocol with headless participants (WebSocket signaling, webrtc-rs peer connections,
//! synthetic VP8- and Opus-shaped media) and reports what users and operators would notice:
//! loss, latency, join time, and what the server paid for it. `floor` measures what any SFU must
//! pay per forwarded packet on this machine, `pipeline` what webrtc-rs's sans-IO core charges.
//! See `docs/performance.md`.

mod churn;
mod floor;
mod http;
mod load;
mod measure;
mod metrics;
mod pipeline;
mod plan;
mod procfs;
mod progress;
mod report;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

/// Load tool for a Hearth server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a load scenario against a running server and report.
    Run(Box<RunArgs>),
    /// Measure the per-packet floor: SRTP protect of a 1200-byte packet plus one UDP send.
    Floor(FloorArgs),
    /// Measure webrtc-rs's sans-IO core per forwarded packet (a subscribe connection's
    /// interceptors and SRTP, without the async layer), alone and with a UDP send.
    Pipeline(PipelineArgs),
}

/// What to load the server with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Rooms of `--room-size`, everyone publishing audio and video.
    Meeting,
    /// One publisher (host of a stage session), `--viewers` receive-only attendees.
    Live,
    /// `--speakers` publishing audio only on a stage, `--listeners` receive-only attendees.
    Audio,
    /// One publishing host; participants join at `--join-rate` for `--duration` seconds, each
    /// staying `--stay` seconds.
    Churn,
}

/// Options of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The scenario.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// meeting: number of rooms.
    #[arg(long, default_value_t = 2)]
    pub rooms: usize,
    /// meeting: participants per room (4, 8, 16...).
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// live: receive-only viewers.
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,
    /// audio: publishing speakers.
    #[arg(long, default_value_t = 10)]
    pub speakers: usize,
    /// audio: receive-only listeners.
    #[arg(long, default_value_t = 50)]
    pub listeners: usize,
    /// Seconds measured (after everyone joined and the warm-up); churn: seconds of churn.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds between the last join and the start of the measurement.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Joins started per second.
    #[arg(long, default_value_t = 20.0)]
    pub join_rate: f64,
    /// churn: seconds each participant stays.
    #[arg(long, default_value_t = 5)]
    pub stay: u64,
    /// churn: participants join receive-only instead of publishing audio and video.
    #[arg(long)]
    pub churn_receive_only: bool,
    /// Video bitrate in bits per second.
    #[arg(long, default_value_t = 1_500_000)]
    pub bitrate: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Seconds between periodic keyframes.
    #[arg(long, default_value_t = 3)]
    pub keyframe_interval: u32,
    /// Pace video like a browser: packets leave no faster than this multiple of the bitrate
    /// (libwebrtc uses 2.5), so a keyframe is spread over tens of milliseconds. 0: every
    /// frame's packets leave at once, the worst case for forwarding latency (the default, and
    /// what every earlier result in docs/performance.md used).
    #[arg(long, default_value_t = 0.0)]
    pub pacing: f64,
    /// The server's process id, for its CPU and memory. Default: whoever listens on the
    /// server URL's port (if this user may read its /proc entry).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// IP the participants' media sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,
    /// The server's API key, if it requires one to create sessions.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Repeat the scenario this many times; the table shows each run and the median.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Write the full report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Use this floor (µs per packet) instead of measuring it after the runs.
    #[arg(long)]
    pub floor_us: Option<f64>,
    /// Publish this real VP8 clip (an IVF file, looped, at `--fps`) instead of synthetic
    /// VP8-shaped video. The recorder writes only real frames, so `--record` needs it.
    #[arg(long, requires = "clip_audio")]
    pub clip_video: Option<PathBuf>,
    /// The Opus clip to go with `--clip-video`: an Ogg file with one 20 ms packet per page.
    #[arg(long, requires = "clip_video")]
    pub clip_audio: Option<PathBuf>,
    /// Record every session while measuring (started before the warm-up, stopped after).
    #[arg(long)]
    pub record: bool,
    /// The clip, once loaded.
    #[arg(skip)]
    pub clip: Option<std::sync::Arc<hearth_client::Clip>>,
}

/// Options of `floor`.
#[derive(Debug, Clone, Args)]
struct FloorArgs {
    /// Runs; each number reported is the median.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Packets per run.
    #[arg(long, default_value_t = 50_000)]
    packets: usize,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Options of `pipeline`.
#[derive(Debug, Clone, Args)]
struct PipelineArgs {
    /// Runs; each number reported is the median.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Packets per run, each forwarded to every connection.
    #[arg(long, default_value_t = 20_000)]
    packets: usize,
    /// Subscribe connections (viewers) each packet goes to.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=pipeline::MAX_CONNECTIONS as i64))]
    connections: u16,
    /// Write the result as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Quiet by default: the progress line is the output. `RUST_LOG=hearth_client=debug` shows
    // each participant's connection states when a run misbehaves.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,webrtc=error,rtc=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Floor(args) => {
            let floor = floor::measure(args.runs, args.packets)?;
            report::print_floor(&floor);
            if let Some(path) = args.json {
                std::fs::write(&path, serde_json::to_string_pretty(&floor)?)?;
            }
            Ok(())
        }
        Command::Pipeline(args) => {
            let pipeline =
                pipeline::measure(args.runs, args.packets, usize::from(args.connections))?;
            report::print_pipeline(&pipeline);
            if let Some(path) = args.json {
                std::fs::write(&path, serde_json::to_string_pretty(&pipeline)?)?;
            }
            Ok(())
        }
        Command::Run(args) => {
            let mut args = *args;
            if let (Some(video), Some(audio)) = (&args.clip_video, &args.clip_audio) {
                let clip = hearth_client::Clip::from_files(video, args.fps, audio, None)
                    .map_err(|e| anyhow::anyhow!("reading the clip: {e}"))?;
                eprintln!(
                    "clip: {} video frames, {} audio packets",
                    clip.video.len(),
                    clip.audio.len()
                );
                args.clip = Some(std::sync::Arc::new(clip));
            }
            run(args)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(load::run_all(args))
}
