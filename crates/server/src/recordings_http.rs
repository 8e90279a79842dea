//! The recordings API: start and stop, the host's list, replay data, stream and export
//! downloads (with HTTP ranges, so a `<video>` element can seek), sharing and deleting.
//!
//! Who may see a recording: a holder of its session's host key (or the server's API key), or a
//! holder of its replay link. Everything else gets 404 and no bytes: an id that is not a
//! recording's, a recording of another session, a forged or revoked key.

use crate::error::ApiError;
use crate::http::{base_url, bearer, has_api_key};
use crate::ranged::serve_file;
use crate::recordings::derive_replay_key;
use crate::room::RoomCommand;
use crate::{AppState, assets};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_proto::{ErrorCode, RecordingId, RecordingStatus, SessionId};
use hearth_record::{Manifest, RecordingState, is_safe_file_name};
use hearth_store::{RecordingRecord, secrets};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// Keys a request may carry in its query: `k` (host key) or `r` (replay key). Query rather than
/// header because a `<video src>` cannot send headers.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RecordingKeys {
    k: Option<String>,
    r: Option<String>,
    #[serde(default)]
    download: Option<u8>,
}

/// How a request got in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Host key or API key: may also share, delete and export.
    Host,
    /// Replay link: may watch and download.
    Replay,
}

fn unknown_recording() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::UnknownRecording,
        message: "no such recording".into(),
    }
}

/// A request about a session's recordings without its host key (or the API key).
fn not_host() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: ErrorCode::Unauthorized,
        message: "needs the session's host key (?k= or Authorization: Bearer) or the API key"
            .into(),
    }
}

fn bad_key() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::InvalidLink,
        message: "this link does not open this recording (it may have been revoked)".into(),
    }
}

/// The host key given with a request (query `k` or bearer), if it is `session`'s. Ended
/// sessions count: recordings outlive the session.
fn host_key_of<'a>(
    state: &AppState,
    session: &SessionId,
    keys: &'a RecordingKeys,
    headers: &'a HeaderMap,
) -> Option<&'a str> {
    let record = state.sessions().store().session(session).ok().flatten()?;
    [keys.k.as_deref(), bearer(headers)]
        .into_iter()
        .flatten()
        .find(|key| secrets::verify_secret(&record.host_hash, key))
}

/// Finds recording `raw` and decides whether this request may see it.
fn authorize(
    state: &AppState,
    raw: &str,
    keys: &RecordingKeys,
    headers: &HeaderMap,
) -> Result<(RecordingId, RecordingRecord, Access), ApiError> {
    let id = RecordingId::parse(raw).ok_or_else(unknown_recording)?;
    let record = state
        .sessions()
        .recordings()
        .record(&id)
        .ok_or_else(unknown_recording)?;
    if host_key_of(state, &record.session, keys, headers).is_some() || has_api_key(state, headers) {
        return Ok((id, record, Access::Host));
    }
    let replay = [keys.r.as_deref(), bearer(headers)].into_iter().flatten();
    if let Some(hash) = &record.replay_hash
        && replay
            .into_iter()
            .any(|key| secrets::verify_secret(hash, key))
    {
        return Ok((id, record, Access::Replay));
    }
    Err(bad_key())
}

fn host_only(access: Access) -> Result<(), ApiError> {
    match access {
        Access::Host => Ok(()),
        Access::Replay => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: ErrorCode::Forbidden,
            message: "only a host can do this; a replay link only watches".into(),
        }),
    }
}

/// A recording as the host's list shows it.
#[derive(Debug, Serialize)]
struct Listed {
    id: String,
    title: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    started_at_ms: i64,
    duration_ms: i64,
    bytes: i64,
    participants: Vec<String>,
    /// The replay link, while shared (shown to the host who holds the host key).
    #[serde(skip_serializing_if = "Option::is_none")]
    replay_url: Option<String>,
    shared: bool,
}

fn listed(record: RecordingRecord, replay_url: Option<String>) -> Listed {
    // A recording in progress is as long as it has run so far.
    let duration_ms = if record.state == RecordingState::Recording.as_str() {
        (crate::sessions::now_ms() - record.started_ms).max(0)
    } else {
        record.duration_ms
    };
    Listed {
        shared: record.replay_hash.is_some(),
        id: record.id,
        title: record.title,
        state: record.state,
        error: record.error,
        started_at_ms: record.started_ms,
        duration_ms,
        bytes: record.bytes,
        participants: record.participants,
        replay_url,
    }
}

fn replay_url(base: &str, record: &RecordingRecord, host_key: Option<&str>) -> Option<String> {
    let host_key = host_key?;
    let id = RecordingId::parse(&record.id)?;
    let key = derive_replay_key(host_key, &id, record.replay_generation);
    let hash = record.replay_hash.as_deref()?;
    secrets::verify_secret(hash, &key).then(|| format!("{base}/r/{id}?r={key}"))
}

/// `GET /api/sessions/{id}/recordings`: the host's list.
pub(crate) async fn list(
    State(state): State<AppState>,
    Path(session): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let session = SessionId::from_string(session);
    let host_key = host_key_of(&state, &session, &keys, &headers);
    if host_key.is_none() && !has_api_key(&state, &headers) {
        return Err(not_host());
    }
    let records = state
        .sessions()
        .store()
        .recordings_of(&session)
        .map_err(|e| ApiError::internal(format!("listing recordings: {e}")))?;
    let base = base_url(&state, &headers)?;
    let list: Vec<Listed> = records
        .into_iter()
        .map(|r| {
            let url = replay_url(&base, &r, host_key);
            listed(r, url)
        })
        .collect();
    Ok(Json(serde_json::json!({
        "recordings": list,
        "enabled": state.sessions().recordings().enabled(),
    })))
}

/// `POST` / `DELETE /api/sessions/{id}/recording`: start or stop recording a live session.
pub(crate) async fn control(
    state: AppState,
    session: String,
    keys: RecordingKeys,
    headers: HeaderMap,
    start: bool,
) -> Result<Response, ApiError> {
    let session = SessionId::from_string(session);
    if host_key_of(&state, &session, &keys, &headers).is_none() && !has_api_key(&state, &headers) {
        return Err(not_host());
    }
    let handle = state
        .sessions()
        .get(&session)
        .ok_or_else(ApiError::unknown_session)?;
    let (reply, answer) = oneshot::channel();
    handle
        .room
        .send(RoomCommand::Record { start, reply })
        .await
        .map_err(|_| ApiError::unknown_session())?;
    let result = answer.await.map_err(|_| ApiError::unknown_session())?;
    let status: Option<RecordingStatus> = result.map_err(|(code, message)| ApiError {
        status: match code {
            ErrorCode::RecordingUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SessionEnded => StatusCode::GONE,
            _ => StatusCode::BAD_REQUEST,
        },
        code,
        message,
    })?;
    Ok(match status {
        Some(s) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "recording": s })),
        )
            .into_response(),
        None => Json(serde_json::json!({ "recording": null })).into_response(),
    })
}

/// `GET /api/recordings/{id}`: the manifest, with a URL for every stream.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (id, record, access) = authorize(&state, &raw, &keys, &headers)?;
    let manifest = state
        .sessions()
        .recordings()
        .manifest(&id)
        .ok_or_else(unknown_recording)?;
    let key_query = match access {
        Access::Host => keys
            .k
            .as_deref()
            .map(|k| format!("k={k}"))
            .unwrap_or_default(),
        Access::Replay => keys
            .r
            .as_deref()
            .map(|r| format!("r={r}"))
            .unwrap_or_default(),
    };
    let streams: Vec<serde_json::Value> = manifest
        .streams
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["url"] = format!("/api/recordings/{id}/streams/{}?{key_query}", s.id).into();
            v
        })
        .collect();
    let mut body =
        serde_json::to_value(&manifest).map_err(|e| ApiError::internal(e.to_string()))?;
    body["streams"] = streams.into();
    body["state"] = record.state.into();
    body["access"] = match access {
        Access::Host => "host",
        Access::Replay => "replay",
    }
    .into();
    Ok(Json(body))
}

/// `GET /api/recordings/{id}/streams/{stream}`: one recorded file, with ranges.
pub(crate) async fn stream(
    State(state): State<AppState>,
    Path((raw, stream)): Path<(String, String)>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, _, _) = authorize(&state, &raw, &keys, &headers)?;
    let recordings = state.sessions().recordings();
    let manifest = recordings.manifest(&id).ok_or_else(unknown_recording)?;
    let entry = manifest.stream(&stream).ok_or_else(ApiError::not_found)?;
    if !is_safe_file_name(&entry.file) {
        return Err(ApiError::not_found());
    }
    let dir = recordings.dir_of(&id).ok_or_else(unknown_recording)?;
    let name = download_name(&manifest, &entry.file);
    serve_file(
        dir.join(&entry.file),
        &entry.content_type,
        &headers,
        keys.download.is_some().then_some(name),
    )
    .await
}

fn download_name(manifest: &Manifest, file: &str) -> String {
    let title: String = manifest
        .title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{}-{}", title.trim_matches('-'), file)
}

/// `POST /api/recordings/{id}/share`: the replay link (made on first use).
pub(crate) async fn share(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = RecordingId::parse(&raw).ok_or_else(unknown_recording)?;
    let record = state
        .sessions()
        .recordings()
        .record(&id)
        .ok_or_else(unknown_recording)?;
    // The link is derived from the host key, so only a host-key holder can make one.
    let host_key = host_key_of(&state, &record.session, &keys, &headers).ok_or_else(bad_key)?;
    let key = derive_replay_key(host_key, &id, record.replay_generation);
    state
        .sessions()
        .store()
        .set_replay(id.as_str(), Some(&secrets::hash_secret(&key)))
        .map_err(|e| ApiError::internal(format!("sharing: {e}")))?;
    let base = base_url(&state, &headers)?;
    Ok(Json(
        serde_json::json!({ "replay_url": format!("{base}/r/{id}?r={key}") }),
    ))
}

/// `DELETE /api/recordings/{id}/share`: the replay link stops working.
pub(crate) async fn unshare(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (id, _, access) = authorize(&state, &raw, &keys, &headers)?;
    host_only(access)?;
    state
        .sessions()
        .store()
        .set_replay(id.as_str(), None)
        .map_err(|e| ApiError::internal(format!("unsharing: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses what cannot be done to a recording still being made (delete, export).
fn not_in_progress(record: &RecordingRecord) -> Result<(), ApiError> {
    if record.state == RecordingState::Recording.as_str() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: ErrorCode::RecordingInProgress,
            message: "this recording is still being made; stop it first".into(),
        });
    }
    Ok(())
}

/// `DELETE /api/recordings/{id}`: gone for good (files and index).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (id, record, access) = authorize(&state, &raw, &keys, &headers)?;
    host_only(access)?;
    not_in_progress(&record)?;
    state.exports().cancel(&id);
    state
        .sessions()
        .recordings()
        .delete(&id)
        .map_err(|e| ApiError::internal(format!("deleting a recording: {e}")))?;
    tracing::info!(recording_id = %id, "recording deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/recordings/{id}/export`: where the export stands.
pub(crate) async fn export_status(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Json<crate::export::ExportStatus>, ApiError> {
    let (id, _, _) = authorize(&state, &raw, &keys, &headers)?;
    let dir = state
        .sessions()
        .recordings()
        .dir_of(&id)
        .ok_or_else(unknown_recording)?;
    Ok(Json(state.exports().status(&id, &dir).await))
}

/// `POST /api/recordings/{id}/export`: starts the export.
pub(crate) async fn export_start(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<crate::export::ExportStatus>), ApiError> {
    let (id, record, access) = authorize(&state, &raw, &keys, &headers)?;
    host_only(access)?;
    not_in_progress(&record)?;
    let recordings = state.sessions().recordings();
    let manifest = recordings.manifest(&id).ok_or_else(unknown_recording)?;
    let dir = recordings.dir_of(&id).ok_or_else(unknown_recording)?;
    let status = state.exports().start(&id, dir, manifest).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// `GET /api/recordings/{id}/export/file`: the exported file.
pub(crate) async fn export_file(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(keys): Query<RecordingKeys>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, _, _) = authorize(&state, &raw, &keys, &headers)?;
    let recordings = state.sessions().recordings();
    let dir = recordings.dir_of(&id).ok_or_else(unknown_recording)?;
    let (path, content_type) = state
        .exports()
        .finished(&dir)
        .await
        .ok_or_else(ApiError::not_found)?;
    let name = recordings
        .manifest(&id)
        .map(|m| {
            download_name(
                &m,
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("export"),
            )
        })
        .unwrap_or_else(|| "export".into());
    serve_file(path, content_type, &headers, Some(name)).await
}

/// `GET /r/{id}`: the replay page (it explains a bad link itself).
pub(crate) async fn replay_page() -> Response {
    assets::page("replay.html", StatusCode::OK)
}

/// `GET /s/{id}/recordings`: the host's recordings page.
pub(crate) async fn recordings_page() -> Response {
    assets::page("recordings.html", StatusCode::OK)
}
