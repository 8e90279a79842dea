//! Helpers for end-to-end tests: start a real server on port 0, talk HTTP to it, wait for
//! conditions with a bound; real media made by ffmpeg and the checks of recorded files
//! ([`media`]).

pub mod media;

use hearth_proto::SessionId;
use hearth_server::{AppState, ServerConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Loopback, where every test's sockets live.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The keys of a session's host and invite links.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `k` of the host link.
    pub host: String,
    /// `i` of the invite link.
    pub invite: String,
}

impl Keys {
    /// Joins as host.
    pub fn host(&self) -> hearth_client::Key {
        hearth_client::Key::Host(self.host.clone())
    }

    /// Joins with the invite link.
    pub fn invite(&self) -> hearth_client::Key {
        hearth_client::Key::Invite(self.invite.clone())
    }
}

/// A server running inside the test process.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's state, to look inside (occupancy, counters).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl TestServer {
    /// Starts a server with default settings (media on loopback).
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    /// Starts a server with `config` (media forced onto loopback).
    pub async fn start_with(mut config: ServerConfig) -> Self {
        init_logs();
        config.media.bind_ip = LOCALHOST;
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("bound address");
        let (flag_tx, flag_rx) = watch::channel(false);
        let state = AppState::new(config, flag_rx).expect("server state");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                    let _ = flag_tx.send(true);
                };
                hearth_server::serve(listener, state, shutdown)
                    .await
                    .expect("server ran");
            }
        });
        Self {
            base: format!("http://{addr}"),
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    /// Creates a session through `POST /api/sessions`; returns its id and link keys.
    pub async fn create_session(&self, title: &str) -> (SessionId, Keys) {
        self.create_session_with(serde_json::json!({ "title": title }))
            .await
    }

    /// Creates a session with the given JSON body.
    pub async fn create_session_with(&self, body: serde_json::Value) -> (SessionId, Keys) {
        let body = body.to_string();
        let (status, json) = self.request("POST", "/api/sessions", Some(&body)).await;
        assert_eq!(status, 201, "create session: {json}");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json body");
        let id = v["id"].as_str().expect("id").to_owned();
        let host_url = v["host_url"].as_str().expect("host_url");
        let host = host_url
            .split("?k=")
            .nth(1)
            .expect("host key in host_url")
            .to_owned();
        let invite_url = v["invite_url"].as_str().expect("invite_url");
        let invite = invite_url
            .split("?i=")
            .nth(1)
            .expect("invite key in invite_url")
            .to_owned();
        (SessionId::from_string(id), Keys { host, invite })
    }

    /// One HTTP/1.1 request; returns status and body.
    pub async fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.request_as(method, path, body, None).await
    }

    /// One HTTP/1.1 request with `Authorization: Bearer <bearer>`; returns status and body.
    pub async fn request_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        bearer: Option<&str>,
    ) -> (u16, String) {
        let host = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.expect("connect");
        let body = body.unwrap_or("");
        let auth = bearer
            .map(|b| format!("Authorization: Bearer {b}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response).to_string();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// One HTTP/1.1 request with extra headers; returns status, response headers (names in
    /// lower case) and the raw body.
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        http(&self.base, method, path, headers).await
    }

    /// People and tracks in a session, from the room task.
    pub async fn occupancy(&self, id: &SessionId) -> (usize, usize) {
        let o = self
            .state
            .sessions()
            .occupancy(id)
            .await
            .expect("session exists");
        (o.participants, o.tracks)
    }

    /// Stops the server gracefully and waits (up to 10 s) for it. Returns whether it finished.
    pub async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_ok(),
            None => true,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// One HTTP/1.1 request without a body to the server at `base` (`http://127.0.0.1:<port>`), with
/// extra headers; returns status, response headers (names in lower case) and the raw body.
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

/// Polls `check` every 50 ms until it returns true, or panics after `within` with `what`.
pub async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Local UDP ports bound on 127.0.0.1 in this network namespace, from `/proc/net/udp`.
pub fn loopback_udp_ports() -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(|local| local.split_once(':'))
        // 127.0.0.1 in the kernel's little-endian hex.
        .filter(|(ip, _)| *ip == "0100007F")
        .filter_map(|(_, port)| u16::from_str_radix(port, 16).ok())
        .collect()
}

/// The `i` key of a minted invite, created through `POST /api/sessions/{id}/invites` with
/// `bearer` (host key or API key).
pub async fn mint_invite(server: &TestServer, id: &SessionId, body: &str, bearer: &str) -> String {
    let (status, text) = server
        .request_as(
            "POST",
            &format!("/api/sessions/{id}/invites"),
            Some(body),
            Some(bearer),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["invite_url"]
        .as_str()
        .expect("invite_url")
        .split("?i=")
        .nth(1)
        .expect("key")
        .to_owned()
}
pub mod netns;
