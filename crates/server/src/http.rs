//! Routes: the REST API, the WebSocket endpoint, the web client.

use crate::error::ApiError;
use crate::recordings_http as rec;
use crate::sessions::{LinkError, NewSessionRequest, now_ms};
use crate::{AppState, assets, connection, metrics};
use axum::extract::rejection::JsonRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hearth_proto::{ErrorCode, MAX_MESSAGE_BYTES, MAX_TITLE_CHARS, Role, SessionId, Shape};
use hearth_store::secrets;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Largest HTTP request body accepted by the API.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest lifetime of a minted invite.
const MAX_INVITE_SECS: u64 = 366 * 24 * 3600;

/// The whole HTTP surface of Hearth.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/api/sessions", post(create_session))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/sessions/{id}/invites", post(mint_invite))
        .route("/api/sessions/{id}/recordings", get(rec::list))
        .route(
            "/api/sessions/{id}/recording",
            post(start_recording).delete(stop_recording),
        )
        .route("/api/recordings/{id}", get(rec::get).delete(rec::delete))
        .route("/api/recordings/{id}/streams/{stream}", get(rec::stream))
        .route(
            "/api/recordings/{id}/share",
            post(rec::share).delete(rec::unshare),
        )
        .route(
            "/api/recordings/{id}/export",
            get(rec::export_status).post(rec::export_start),
        )
        .route("/api/recordings/{id}/export/file", get(rec::export_file))
        .route("/r/{id}", get(rec::replay_page))
        .route("/s/{id}/recordings", get(rec::recordings_page))
        .route("/ws", get(websocket))
        .route("/", get(|| async { assets::index(StatusCode::OK) }))
        .route("/s/{id}", get(session_page))
        .fallback(static_file)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn start_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(keys): Query<rec::RecordingKeys>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    rec::control(state, id, keys, headers, true).await
}

async fn stop_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(keys): Query<rec::RecordingKeys>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    rec::control(state, id, keys, headers, false).await
}

async fn healthz() -> &'static str {
    "ok"
}

/// The Prometheus scrape target: server-wide numbers only (see `metrics.rs`, `docs/api.md`).
async fn prometheus(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&state),
    )
        .into_response()
}

fn body_error(e: &JsonRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::MessageTooLarge,
            message: format!("request body over {MAX_BODY_BYTES} bytes"),
        }
    } else {
        ApiError::invalid(e.body_text())
    }
}

pub(crate) fn unauthorized() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: ErrorCode::Unauthorized,
        message: "missing or wrong API key (Authorization: Bearer <key>)".into(),
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether the request carries the configured API key (compared in constant time).
pub(crate) fn has_api_key(state: &AppState, headers: &HeaderMap) -> bool {
    match (&state.config().api_key, bearer(headers)) {
        (Some(key), Some(given)) => secrets::verify_secret(&secrets::hash_secret(key), given),
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    title: String,
    #[serde(default)]
    shape: Shape,
    #[serde(default)]
    waiting_room: bool,
    #[serde(default)]
    max_participants: Option<u32>,
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
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
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
    if state.config().api_key.is_some() && !has_api_key(&state, &headers) {
        return Err(unauthorized());
    }
    let Json(body) = body.map_err(|e| body_error(&e))?;
    let title = clean_title(&body.title)?;
    let server_max = state.config().max_participants;
    let max_participants = match body.max_participants {
        None => server_max,
        Some(n) if (1..=server_max).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "max_participants must be 1 to {server_max}"
            )));
        }
    };
    let base = base_url(&state, &headers)?;
    let keys = state
        .sessions()
        .create(NewSessionRequest {
            title: title.clone(),
            shape: body.shape,
            waiting_room: body.waiting_room,
            max_participants,
        })
        .map_err(|e| ApiError::internal(format!("creating session: {e}")))?;
    let id = keys.id;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession {
            host_url: format!("{base}/s/{id}?k={}", keys.host_key),
            invite_url: format!("{base}/s/{id}?i={}", keys.invite_key),
            title,
            id,
        }),
    ))
}

/// `k` (host key) and `i` (invite key) from a link.
#[derive(Debug, Default, Deserialize)]
struct LinkKeys {
    k: Option<String>,
    i: Option<String>,
}

fn link_error(e: LinkError) -> ApiError {
    ApiError {
        status: if e.is_gone() {
            StatusCode::GONE
        } else {
            StatusCode::NOT_FOUND
        },
        code: e.code(),
        message: e.message().into(),
    }
}

#[derive(Debug, Serialize)]
struct SessionSummary {
    id: SessionId,
    title: String,
    participants: usize,
    shape: Shape,
}

/// A session's public summary, for holders of one of its links.
async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(keys): Query<LinkKeys>,
) -> Result<Json<SessionSummary>, ApiError> {
    let id = SessionId::from_string(id);
    let (handle, _) = state
        .sessions()
        .authorize(&id, keys.k.as_deref(), keys.i.as_deref())
        .map_err(link_error)?;
    let occupancy = state
        .sessions()
        .occupancy(&id)
        .await
        .ok_or_else(|| ApiError::internal("room task gone"))?;
    let shape = state
        .sessions()
        .store()
        .session(&id)
        .ok()
        .flatten()
        .map(|r| crate::sessions::settings_from_store(&r.settings).shape)
        .unwrap_or_default();
    Ok(Json(SessionSummary {
        id,
        title: handle.info.title.clone(),
        participants: occupancy.participants,
        shape,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintInvite {
    #[serde(default = "attendee")]
    role: Role,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

fn attendee() -> Role {
    Role::Attendee
}

#[derive(Debug, Serialize, Deserialize)]
struct MintedInvite {
    invite_url: String,
    role: Role,
    expires_at_ms: Option<i64>,
}

/// Mints an extra invite link with a role and an optional expiry. Needs the API key or the
/// session's host key (`Authorization: Bearer <key>`).
async fn mint_invite(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<MintInvite>, JsonRejection>,
) -> Result<(StatusCode, Json<MintedInvite>), ApiError> {
    let id = SessionId::from_string(id);
    let host = bearer(&headers).is_some_and(|key| state.sessions().is_host_key(&id, key));
    if !host && !has_api_key(&state, &headers) {
        return Err(unauthorized());
    }
    let Json(body) = body.map_err(|e| body_error(&e))?;
    if body.role == Role::Host {
        return Err(ApiError::invalid(
            "an invite cannot make a host; share the host link instead",
        ));
    }
    let expires_at_ms = match body.expires_in_secs {
        None => None,
        Some(secs) if (1..=MAX_INVITE_SECS).contains(&secs) => {
            Some(now_ms().saturating_add(i64::try_from(secs * 1000).unwrap_or(i64::MAX)))
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "expires_in_secs must be 1 to {MAX_INVITE_SECS}"
            )));
        }
    };
    if state.sessions().get(&id).is_none() {
        return Err(ApiError::unknown_session());
    }
    let key = state
        .sessions()
        .mint_invite(&id, body.role, expires_at_ms)
        .map_err(|e| ApiError::internal(format!("minting invite: {e}")))?;
    let base = base_url(&state, &headers)?;
    Ok((
        StatusCode::CREATED,
        Json(MintedInvite {
            invite_url: format!("{base}/s/{id}?i={key}"),
            role: body.role,
            expires_at_ms,
        }),
    ))
}

/// The join page. A dead or unknown link still gets the page (it explains), with 404 or 410.
async fn session_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(keys): Query<LinkKeys>,
) -> Response {
    let id = SessionId::from_string(id);
    let status = match state
        .sessions()
        .authorize(&id, keys.k.as_deref(), keys.i.as_deref())
    {
        Ok(_) => StatusCode::OK,
        Err(e) if e.is_gone() => StatusCode::GONE,
        Err(_) => StatusCode::NOT_FOUND,
    };
    assets::index(status)
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(slot) = state.connection_slot(peer.ip()) else {
        tracing::info!(%peer, "too many connections from one address");
        return ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: ErrorCode::TooManyConnections,
            message: "too many open connections from your address".into(),
        }
        .into_response();
    };
    let base = base_url(&state, &headers).unwrap_or_else(|_| "http://localhost".into());
    // Frames up to 4x the protocol limit are read so an oversize message can be answered with
    // `message_too_large` instead of a bare protocol error; beyond that the socket is cut.
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES * 4)
        .max_frame_size(MAX_MESSAGE_BYTES * 4)
        .on_upgrade(move |socket| async move {
            let open = state.metrics().websocket_opened();
            connection::serve(socket, state, peer, base).await;
            drop(open);
            drop(slot);
        })
}

async fn static_file(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match assets::file(path) {
        Some(response) if !path.is_empty() => response,
        _ => ApiError::not_found().into_response(),
    }
}
