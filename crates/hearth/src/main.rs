//! The `hearth` binary: parse configuration, set up logging, serve until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use hearth_media::{MediaConfig, PortRange};
use hearth_server::ServerConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod logs;

/// Hearth: live video gatherings on a server you own.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address for HTTP and WebSocket.
    #[arg(long, env = "HEARTH_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Base URL used in host and invite links (e.g. https://hearth.example.org). Default: the
    /// address the browser used to reach the server.
    #[arg(long, env = "HEARTH_PUBLIC_URL")]
    public_url: Option<String>,

    /// IP address media (UDP) sockets bind to. 0.0.0.0 binds every non-loopback interface.
    #[arg(long, env = "HEARTH_RTC_IP", default_value = "0.0.0.0")]
    rtc_ip: IpAddr,

    /// IP address advertised to browsers in ICE candidates, when it differs from the bound one
    /// (Docker port mapping, 1:1 NAT).
    #[arg(long, env = "HEARTH_PUBLIC_IP")]
    public_ip: Option<IpAddr>,

    /// UDP port range for media, e.g. 40000-40199 (two ports per participant). Default: any
    /// free port.
    #[arg(long, env = "HEARTH_UDP_PORTS")]
    udp_ports: Option<PortRange>,

    /// Directory for the database (sessions, links, chat). Created if missing.
    #[arg(long, env = "HEARTH_DATA_DIR", default_value = "hearth-data")]
    data_dir: PathBuf,

    /// When set, creating sessions and minting invites through the API requires
    /// `Authorization: Bearer <key>`.
    #[arg(long, env = "HEARTH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,

    /// Default and largest participant limit per session.
    #[arg(long, env = "HEARTH_MAX_PARTICIPANTS", default_value_t = hearth_server::DEFAULT_MAX_PARTICIPANTS)]
    max_participants: u32,

    /// Open WebSockets allowed from one IP address.
    #[arg(long, env = "HEARTH_MAX_CONNECTIONS_PER_IP", default_value_t = 20)]
    max_connections_per_ip: usize,

    /// Directory for recordings (one directory per recording). Default: `recordings` inside
    /// the data directory.
    #[arg(long, env = "HEARTH_RECORDINGS_DIR")]
    recordings_dir: Option<PathBuf>,

    /// Turn recording off: hosts get a clear refusal when they try.
    #[arg(long, env = "HEARTH_DISABLE_RECORDING")]
    disable_recording: bool,

    /// The ffmpeg program for "export as one file" (a name on PATH or a path). Without it,
    /// export is refused with a clear message; recording and replay do not need it.
    #[arg(long, env = "HEARTH_FFMPEG", default_value = "ffmpeg")]
    ffmpeg: PathBuf,

    /// Seconds a participant whose signaling socket was lost (a network change) stays in the
    /// session, media running, for their page to reconnect as the same participant. 0: leave
    /// at once.
    #[arg(long, env = "HEARTH_RESUME_GRACE_SECS", default_value_t = 30)]
    resume_grace_secs: u64,

    /// Seconds a media connection may stay silent after it was noticed to be disconnected (5 s
    /// of silence) before it counts as failed; then only an ICE restart from the client, which
    /// the web client does by itself, brings its media back.
    #[arg(long, env = "HEARTH_ICE_FAILED_SECS", default_value_t = 25)]
    ice_failed_secs: u64,
}

// jemalloc rather than the system allocator: it gives memory back after a busy moment (its
// pages decay and are returned), and it counts the bytes in use, which /metrics reports.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes allocated and not freed, by jemalloc's count (refreshed on each read).
fn heap_allocated() -> Option<u64> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    tikv_jemalloc_ctl::stats::allocated::read()
        .ok()
        .map(|bytes| bytes as u64)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let limit = logs::RateLimit::default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,rtc=warn".into()),
        )
        .finish()
        .with(limit.clone())
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            tokio::spawn(logs::report(limit));
            serve(cli).await
        })
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let recordings_dir = (!cli.disable_recording).then(|| {
        cli.recordings_dir
            .clone()
            .unwrap_or_else(|| cli.data_dir.join("recordings"))
    });
    let config = ServerConfig {
        public_url: cli.public_url,
        media: MediaConfig {
            bind_ip: cli.rtc_ip,
            public_ip: cli.public_ip,
            ports: cli.udp_ports,
            ice_failed: std::time::Duration::from_secs(cli.ice_failed_secs.max(1)),
            ..MediaConfig::default()
        },
        data_dir: Some(cli.data_dir),
        api_key: cli.api_key.filter(|k| !k.is_empty()),
        max_participants: cli.max_participants.max(1),
        max_connections_per_ip: cli.max_connections_per_ip.max(1),
        recordings_dir,
        ffmpeg: cli.ffmpeg,
        resume_grace: std::time::Duration::from_secs(cli.resume_grace_secs),
        heap_allocated: Some(heap_allocated),
        ..ServerConfig::default()
    };
    // Open the database and restore sessions before announcing anything: once the line below
    // is printed, every link must work.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = hearth_server::AppState::new(config.clone(), stop_rx).context("starting")?;
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, media = ?config.media, data_dir = ?config.data_dir, recordings_dir = ?config.recordings_dir, api_key = config.api_key.is_some(), "hearth started");
    // Tests and scripts wait for this exact line on stdout.
    println!("listening on http://{addr}");
    hearth_server::serve(listener, state, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await
    .context("serving")?;
    tracing::info!("hearth stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
