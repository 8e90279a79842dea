//! Routes: the REST API, the WebSocket endpoint, the web client.

use crate::error::ApiError;
use crate::{AppState, assets, connection};
use axum::extract::rejection::JsonRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hearth_proto::{MAX_MESSAGE_BYTES, MAX_TITLE_CHARS, SessionId};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Largest HTTP request body accepted by the API.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The whole HTTP surface of Hearth.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/sessions", post(create_session))
        .route("/api/sessions/{id}", get(get_session))
        .route("/ws", get(websocket))
        .route("/", get(|| async { assets::index(StatusCode::OK) }))
        .route("/s/{id}", get(session_page))
        .fallback(static_file)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    title: String,
}

/// The answer to `POST /api/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedSession {
    /// The session's id.
    pub id: SessionId,
    /// The title, cleaned.
    pub title: String,
    /// Link that joins as host. Keep it private.
    pub host_url: String,
    /// Link to share with attendees.
    pub invite_url: String,
}

/// The base URL for links: the configured one, or what the client used to reach us.
fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = &state.config().public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .ok_or_else(|| ApiError::invalid("missing or invalid Host header; set --public-url"))?;
    Ok(format!("http://{host}"))
}

fn clean_title(title: &str) -> Result<String, ApiError> {
    let cleaned: String = title.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let len = cleaned.chars().count();
    if len == 0 || len > MAX_TITLE_CHARS {
        return Err(ApiError::invalid(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(cleaned.to_owned())
}

async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedSession>), ApiError> {
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: hearth_proto::ErrorCode::MessageTooLarge,
                message: format!("request body over {MAX_BODY_BYTES} bytes"),
            }
        } else {
            ApiError::invalid(e.body_text())
        }
    })?;
    let title = clean_title(&body.title)?;
    let base = base_url(&state, &headers)?;
    let handle = state.sessions().create(title);
    let id = handle.info.id.clone();
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession {
            host_url: format!("{base}/s/{id}?k={}", handle.host_key()),
            invite_url: format!("{base}/s/{id}"),
            title: handle.info.title.clone(),
            id,
        }),
    ))
}

#[derive(Debug, Serialize)]
struct SessionSummary {
    id: SessionId,
    title: String,
    participants: usize,
}

async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionSummary>, ApiError> {
    let id = SessionId::from_string(id);
    let handle = state
        .sessions()
        .get(&id)
        .ok_or_else(ApiError::unknown_session)?;
    let occupancy = state
        .sessions()
        .occupancy(&id)
        .await
        .ok_or_else(|| ApiError::internal("room task gone"))?;
    Ok(Json(SessionSummary {
        id,
        title: handle.info.title.clone(),
        participants: occupancy.participants,
    }))
}

/// The join page. An unknown session still gets the page (it explains), with a 404.
async fn session_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let status = if state.sessions().get(&SessionId::from_string(id)).is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    assets::index(status)
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Frames up to 4x the protocol limit are read so an oversize message can be answered with
    // `message_too_large` instead of a bare protocol error; beyond that the socket is cut.
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES * 4)
        .max_frame_size(MAX_MESSAGE_BYTES * 4)
        .on_upgrade(move |socket| connection::serve(socket, state, peer))
}

async fn static_file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match assets::file(path) {
        Some(response) if !path.is_empty() => response,
        _ => ApiError::not_found().into_response(),
    }
}
