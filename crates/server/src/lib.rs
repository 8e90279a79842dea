//! Hearth's server: the HTTP API, WebSocket signaling, one task per room and one per
//! connection, and the embedded web client. Start it with [`run`], giving it a bound listener
//! and a shutdown future, so tests can run a real server on port 0.

mod assets;
mod connection;
mod error;
mod export;
mod http;
mod metrics;
mod ranged;
mod recordings;
mod recordings_http;
mod room;
mod sessions;

pub use error::ApiError;
pub use http::app;
pub use recordings::Recordings;
pub use sessions::Sessions;

use hearth_media::{MediaConfig, MediaStats, PeerFactory};
use hearth_store::Store;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Participant limit of a session when the server configuration does not say.
pub const DEFAULT_MAX_PARTICIPANTS: u32 = 100;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Everything the server needs to know that is not a socket.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Base URL put in host and invite links, e.g. `https://hearth.example.org`. When unset,
    /// links use the `Host` header of the request that created the session.
    pub public_url: Option<String>,
    /// Media sockets and advertised address.
    pub media: MediaConfig,
    /// How long a new socket may take to send `join`.
    pub join_timeout: Duration,
    /// How long a joined socket may stay completely silent (no frame, no pong).
    pub idle_timeout: Duration,
    /// How often the server pings each socket.
    pub ping_interval: Duration,
    /// Where the SQLite database lives; `None` keeps everything in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// When set, `POST /api/sessions` and invite minting require `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Default (and largest) participant limit per session.
    pub max_participants: u32,
    /// Open WebSockets allowed from one IP address.
    pub max_connections_per_ip: usize,
    /// Where recordings are written (a directory per recording); `None` turns recording off.
    pub recordings_dir: Option<PathBuf>,
    /// The ffmpeg program used to export a recording as one file.
    pub ffmpeg: PathBuf,
    /// How long a room may stay empty before its recording stops: long enough for a host to
    /// reload the page or ride out a network change, short enough that a recording left
    /// running in an empty room ends on its own.
    pub recording_empty_grace: Duration,
    /// How long a participant whose socket was lost (no close frame: a network change, a
    /// sleeping laptop) stays in the room, media running, for its page to resume it on a new
    /// socket. Long enough for a Wi-Fi switch or a mobile handover; others see them present
    /// meanwhile, so not much longer.
    pub resume_grace: Duration,
    /// Bytes the process's allocator has handed out and not had back, where the binary's
    /// allocator can tell (`hearth_heap_allocated_bytes`). Resident memory alone cannot tell
    /// a leak from an allocator keeping pages a busy moment needed.
    pub heap_allocated: Option<fn() -> Option<u64>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            media: MediaConfig::default(),
            join_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            ping_interval: Duration::from_secs(15),
            data_dir: None,
            api_key: None,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            max_connections_per_ip: 20,
            recordings_dir: None,
            ffmpeg: PathBuf::from("ffmpeg"),
            recording_empty_grace: Duration::from_secs(60),
            resume_grace: Duration::from_secs(30),
            heap_allocated: None,
        }
    }
}

/// Shared by every request and connection.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    sessions: Sessions,
    peers: PeerFactory,
    /// Flips to `true` when the server begins shutting down; connections watch it to say
    /// goodbye instead of being cut.
    shutdown: watch::Receiver<bool>,
    /// Open WebSockets per client address.
    connections: Mutex<HashMap<IpAddr, usize>>,
    /// Counters of the signaling layer, for `/metrics`.
    metrics: Arc<metrics::ServerMetrics>,
    /// Exports of recordings as one file (ffmpeg jobs).
    exports: export::Exports,
    /// Participants a new socket could resume.
    resumables: Arc<connection::Resumables>,
}

/// Holds one of an address's connection slots; gives it back when dropped.
pub(crate) struct ConnectionSlot {
    state: AppState,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut map = self
            .state
            .inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl AppState {
    /// State for a server with `config`. `shutdown` turns `true` when the server stops.
    pub fn new(config: ServerConfig, shutdown: watch::Receiver<bool>) -> Result<Self, ApiError> {
        let peers = PeerFactory::new(config.media.clone())
            .map_err(|e| ApiError::internal(format!("media: {e}")))?;
        let store = match &config.data_dir {
            Some(dir) => Store::open(dir),
            None => Store::open_in_memory(),
        }
        .map_err(|e| ApiError::internal(format!("opening the database: {e}")))?;
        // Presence rows left open by a crash would show people as present forever.
        if let Err(e) = store.close_stale_presence(sessions::now_ms()) {
            tracing::warn!(error = %e, "cannot close stale presence");
        }
        let store = Arc::new(store);
        let recordings = Arc::new(Recordings::new(
            config.recordings_dir.clone(),
            Arc::clone(&store),
            config.recording_empty_grace,
        ));
        // Before any room starts: a recording the last run left unfinished is repaired first,
        // so it is listed (as recovered) and plays.
        let recovered = recordings.recover_all();
        if recovered > 0 {
            tracing::info!(recovered, "recordings repaired after an unclean stop");
        }
        let sessions = Sessions::load(store, recordings)
            .map_err(|e| ApiError::internal(format!("loading sessions: {e}")))?;
        let exports = export::Exports::new(config.ffmpeg.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                sessions,
                peers,
                shutdown,
                connections: Mutex::new(HashMap::new()),
                metrics: Arc::default(),
                exports,
                resumables: Arc::default(),
            }),
        })
    }

    /// Takes a connection slot for `ip`, or `None` when it has too many open.
    pub(crate) fn connection_slot(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut map = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.inner.config.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            state: self.clone(),
            ip,
        })
    }

    /// Participants a new socket could resume.
    pub(crate) fn resumables(&self) -> &Arc<connection::Resumables> {
        &self.inner.resumables
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The session registry.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Media counters.
    pub fn media_stats(&self) -> &Arc<MediaStats> {
        self.inner.peers.stats()
    }

    pub(crate) fn metrics(&self) -> &Arc<metrics::ServerMetrics> {
        &self.inner.metrics
    }

    pub(crate) fn exports(&self) -> &export::Exports {
        &self.inner.exports
    }

    pub(crate) fn peers(&self) -> &PeerFactory {
        &self.inner.peers
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }
}

/// Serves Hearth on `listener` until `shutdown` completes, then tells every connected client
/// and waits for their connections to close. Returns the state, so tests can inspect it.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let (tx, rx) = watch::channel(false);
    let state = AppState::new(config, rx)?;
    serve(listener, state, async move {
        shutdown.await;
        let _ = tx.send(true);
    })
    .await
}

/// Like [`run`], with state built by the caller (tests keep a clone to look inside).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let router = app(state.clone());
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ApiError::internal(format!("server: {e}")));
    // Recordings still running are finished (index, duration) before the process exits.
    state.sessions().finish_recordings().await;
    served
}
