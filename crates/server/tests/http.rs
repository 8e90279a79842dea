//! The HTTP contract, driven through the router without a socket.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hearth_server::{AppState, ServerConfig, app};
use tokio::sync::watch;
use tower::ServiceExt;

fn state() -> AppState {
    let (_tx, rx) = watch::channel(false);
    AppState::new(ServerConfig::default(), rx).expect("state")
}

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, String, Option<String>) {
    let response = app(state.clone())
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        content_type,
    )
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, "hearth.test:8080")
        .body(Body::empty())
        .unwrap()
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, "hearth.test:8080")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("json error body");
    v["error"]["code"].as_str().expect("error.code").to_owned()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (status, body, _) = call(&state(), get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn creating_a_session_returns_absolute_host_and_invite_links() {
    let state = state();
    let (status, body, _) = call(
        &state,
        post_json("/api/sessions", r#"{"title":"  Book club  "}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["title"], "Book club");
    let invite_url = v["invite_url"].as_str().unwrap();
    let prefix = format!("http://hearth.test:8080/s/{id}?i=");
    assert!(invite_url.starts_with(&prefix), "{invite_url}");
    let invite = &invite_url[prefix.len()..];
    assert_eq!(invite.len(), 32, "128-bit invite key");
    let host_url = v["host_url"].as_str().unwrap();
    assert!(
        host_url.starts_with(&format!("http://hearth.test:8080/s/{id}?k=")),
        "{host_url}"
    );
    let key = host_url.split("k=").nth(1).unwrap();
    assert_eq!(key.len(), 32, "128-bit host key");
    assert_ne!(key, invite);

    // The invite link opens the web client; the session can be looked up with it.
    let (status, page, content_type) = call(&state, get(&format!("/s/{id}?i={invite}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/html"));
    assert!(page.contains("<script"), "the page loads the client");
    let (status, body, _) = call(&state, get(&format!("/api/sessions/{id}?i={invite}"))).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["title"], "Book club");
    assert_eq!(v["participants"], 0);
    assert!(
        v.get("host_url").is_none(),
        "the public summary never reveals the host link"
    );

    // Without a key, or with a forged one, the session is not even acknowledged.
    for path in [
        format!("/s/{id}"),
        format!("/s/{id}?i=0123456789abcdef0123456789abcdef"),
    ] {
        let (status, _, _) = call(&state, get(&path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, body, _) = call(&state, get(&format!("/api/sessions/{id}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "invalid_link");
}

#[tokio::test]
async fn configured_public_url_is_used_for_links() {
    let (_tx, rx) = watch::channel(false);
    let state = AppState::new(
        ServerConfig {
            public_url: Some("https://rooms.example.org/".into()),
            ..ServerConfig::default()
        },
        rx,
    )
    .unwrap();
    let (_, body, _) = call(&state, post_json("/api/sessions", r#"{"title":"x"}"#)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["invite_url"]
            .as_str()
            .unwrap()
            .starts_with("https://rooms.example.org/s/")
    );
}

#[tokio::test]
async fn invalid_session_requests_get_clear_errors() {
    let state = state();
    for body in [
        r#"{"title":""}"#,
        r#"{"title":"   "}"#,
        r#"{"nope":1}"#,
        "not json",
        r#"{"title":7}"#,
    ] {
        let (status, text, _) = call(&state, post_json("/api/sessions", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {text}");
        assert_eq!(error_code(&text), "invalid_request");
    }
    let long = format!(r#"{{"title":"{}"}}"#, "t".repeat(121));
    let (status, _, _) = call(&state, post_json("/api/sessions", &long)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let huge = format!(r#"{{"title":"{}"}}"#, "t".repeat(100_000));
    let (status, _, _) = call(&state, post_json("/api/sessions", &huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(state.sessions().is_empty(), "nothing was created");
}

#[tokio::test]
async fn unknown_sessions_answer_404_not_200() {
    let state = state();
    let (status, body, _) = call(&state, get("/api/sessions/does-not-exist")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "unknown_session");
    let (status, page, _) = call(&state, get("/s/does-not-exist")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a dead invite link is not a 200"
    );
    assert!(
        page.contains("<script"),
        "but it still opens the page that explains"
    );
}

#[tokio::test]
async fn web_client_is_served_from_the_binary_and_nothing_else_is() {
    let state = state();
    let (status, js, content_type) = call(&state, get("/js/protocol.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/javascript"));
    assert!(!js.is_empty());
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/js/../../Cargo.toml",
        "/etc/passwd",
        "/nope.js",
    ] {
        let (status, body, _) = call(&state, get(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("[workspace]"), "{path} leaked a file");
    }
}

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text_and_count_sessions() {
    let state = state();
    let (status, page, content_type) = call(&state, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "the Prometheus text format"
    );
    for name in [
        "hearth_sessions",
        "hearth_participants",
        "hearth_published_tracks",
        "hearth_subscribed_tracks",
        "hearth_websocket_connections",
        "hearth_rtp_packets_in_total",
        "hearth_rtp_bytes_in_total",
        "hearth_rtp_packets_out_total",
        "hearth_rtp_bytes_out_total",
        "hearth_keyframe_requests_sent_total",
        "hearth_keyframe_requests_throttled_total",
        "hearth_keyframe_requests_from_subscribers_total",
        "hearth_recording_active",
    ] {
        assert!(page.contains(&format!("# TYPE {name} ")), "{name} declared");
        assert_eq!(sample(&page, name), Some(0.0), "{name} starts at 0");
    }
    for reason in ["queue_overflow", "waiting_keyframe", "paused"] {
        assert!(
            page.contains(&format!(
                "hearth_rtp_packets_dropped_total{{reason=\"{reason}\"}} 0"
            )),
            "{reason}"
        );
    }
    assert!(page.contains("# TYPE hearth_websocket_errors_total counter"));
    if cfg!(target_os = "linux") {
        assert!(sample(&page, "process_resident_memory_bytes").is_some_and(|b| b > 0.0));
        assert!(sample(&page, "process_cpu_seconds_total").is_some());
    }

    let (_, body, _) = call(
        &state,
        post_json("/api/sessions", r#"{"title":"Secret club"}"#),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (_, page, _) = call(&state, get("/metrics")).await;
    assert_eq!(sample(&page, "hearth_sessions"), Some(1.0));
    let host_key = v["host_url"].as_str().unwrap().split("k=").nth(1).unwrap();
    let invite_key = v["invite_url"]
        .as_str()
        .unwrap()
        .split("i=")
        .nth(1)
        .unwrap();
    for secret in [
        v["id"].as_str().unwrap(),
        "Secret club",
        host_key,
        invite_key,
    ] {
        assert!(
            !page.contains(secret),
            "metrics reveal nothing about a session"
        );
    }
}
