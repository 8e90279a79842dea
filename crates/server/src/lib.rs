//! Hearth's server: the HTTP API, WebSocket signaling, one task per room and one per
//! connection, and the embedded web client. Start it with [`run`], giving it a bound listener
//! and a shutdown future, so tests can run a real server on port 0.

mod assets;
mod connection;
mod error;
mod http;
mod room;
mod sessions;

pub use error::ApiError;
pub use http::app;
pub use sessions::Sessions;

use hearth_media::{MediaConfig, MediaStats, PeerFactory};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            media: MediaConfig::default(),
            join_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            ping_interval: Duration::from_secs(15),
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
}

impl AppState {
    /// State for a server with `config`. `shutdown` turns `true` when the server stops.
    pub fn new(config: ServerConfig, shutdown: watch::Receiver<bool>) -> Result<Self, ApiError> {
        let peers = PeerFactory::new(config.media.clone())
            .map_err(|e| ApiError::internal(format!("media: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                sessions: Sessions::default(),
                peers,
                shutdown,
            }),
        })
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
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ApiError::internal(format!("server: {e}")))
}
