//! Who may see a recording: hosts (host key or API key) and holders of its replay link. Every
//! other request gets 404 and no bytes, whatever shape its id takes.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{ClipSending, Participant, PublishOptions};
use hearth_e2e::media::{TempDir, clip, ffprobe};
use hearth_e2e::{Keys, LOCALHOST, TestServer, eventually};
use hearth_proto::{ClientMessage, ErrorCode, SessionId};
use hearth_server::ServerConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
/// The first bytes of every WebM file: their absence shows no media leaked.
const EBML_MAGIC: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// A session whose host published a clip while it was recorded for about two seconds.
struct Recorded {
    session: SessionId,
    keys: Keys,
    id: String,
    host: Participant,
}

async fn record_a_session(server: &TestServer, dir: &TempDir, title: &str) -> Recorded {
    let (session, keys) = server.create_session(title).await;
    let media = Arc::new(clip(dir.path(), 1, 30, 15));
    let mut host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.publish_with(PublishOptions {
        clip: Some((media, ClipSending::default())),
        ..PublishOptions::default()
    })
    .await
    .unwrap();
    // Through the REST API this time (the other tests use the WebSocket).
    let (status, body) = server
        .request_as(
            "POST",
            &format!("/api/sessions/{session}/recording"),
            None,
            Some(&keys.host),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = json(body.as_bytes())["recording"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the host is told it records", WAIT, || {
        host.snapshot().recording.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, _, body) = server
        .request_raw(
            "GET",
            &format!("/api/sessions/{session}/recordings?k={}", keys.host),
            &[],
        )
        .await;
    let running = &json(&body)["recordings"][0];
    assert_eq!(running["state"], "recording");
    assert!(
        running["duration_ms"].as_i64().unwrap() >= 1500,
        "a running recording is listed as long as it has run: {running}"
    );
    let (status, body) = server
        .request_as(
            "DELETE",
            &format!("/api/sessions/{session}/recording"),
            None,
            Some(&keys.host),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, body) = server
            .request_raw("GET", &format!("/api/recordings/{id}?k={}", keys.host), &[])
            .await;
        if json(&body)["state"] == "complete" {
            break;
        }
        assert!(Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Recorded {
        session,
        keys,
        id,
        host,
    }
}

/// Asserts `path` is refused with 404 and carries no media.
async fn refused(server: &TestServer, path: &str) {
    let (status, _, body) = server.request_raw("GET", path, &[]).await;
    assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    assert!(
        !body.windows(4).any(|w| w == EBML_MAGIC),
        "{path} leaked media bytes"
    );
}

async fn recording_server(dir: &TempDir) -> TestServer {
    TestServer::start_with(ServerConfig {
        recordings_dir: Some(dir.path().join("recordings")),
        ..ServerConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_hosts_and_replay_links_reach_a_recording_and_no_path_trick_does() {
    let dir = TempDir::new("hearth-rec-access");
    let server = recording_server(&dir).await;
    let a = record_a_session(&server, &dir, "Session A").await;
    let b = record_a_session(&server, &dir, "Session B").await;
    let (ka, kb) = (&a.keys.host, &b.keys.host);

    // Listing: the session's own host key only.
    let list =
        |session: &SessionId, key: &str| format!("/api/sessions/{session}/recordings?k={key}");
    let (status, _, body) = server.request_raw("GET", &list(&a.session, ka), &[]).await;
    assert_eq!(status, 200);
    let listed = json(&body);
    assert_eq!(listed["recordings"].as_array().unwrap().len(), 1);
    assert_eq!(listed["recordings"][0]["id"], a.id.as_str());
    for key in [
        kb.as_str(),
        a.keys.invite.as_str(),
        "",
        "0123456789abcdef0123456789abcdef",
    ] {
        let (status, _, body) = server.request_raw("GET", &list(&a.session, key), &[]).await;
        assert_eq!(status, 401, "listing with {key:?}");
        assert_eq!(json(&body)["error"]["code"], "unauthorized");
    }

    // The manifest and the media: the host key of the recording's own session.
    let manifest = |id: &str, query: &str| format!("/api/recordings/{id}{query}");
    let (status, _, body) = server
        .request_raw("GET", &manifest(&a.id, &format!("?k={ka}")), &[])
        .await;
    assert_eq!(status, 200);
    let m = json(&body);
    assert_eq!(m["access"], "host");
    let stream_id = m["streams"][0]["id"].as_str().unwrap().to_owned();
    let file = dir
        .path()
        .join("recordings")
        .join(&a.id)
        .join(m["streams"][0]["file"].as_str().unwrap());
    let on_disk = std::fs::read(&file).unwrap();
    let stream =
        |id: &str, sid: &str, query: &str| format!("/api/recordings/{id}/streams/{sid}{query}");
    let (status, headers, body) = server
        .request_raw("GET", &stream(&a.id, &stream_id, &format!("?k={ka}")), &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, on_disk, "the download is the file");
    assert!(headers.contains(&("accept-ranges".into(), "bytes".into())));
    // A range, as a <video> element asks for one.
    let (status, headers, body) = server
        .request_raw(
            "GET",
            &stream(&a.id, &stream_id, &format!("?k={ka}")),
            &[("Range", "bytes=100-199")],
        )
        .await;
    assert_eq!(status, 206);
    assert_eq!(body, on_disk[100..200]);
    let range = format!("bytes 100-199/{}", on_disk.len());
    assert!(
        headers.contains(&("content-range".into(), range)),
        "{headers:?}"
    );

    for query in [
        String::new(),
        format!("?k={kb}"),              // another session's host key
        format!("?k={}", a.keys.invite), // an invite is not a host key
        format!("?r={ka}"),              // a host key is not a replay key
        "?k=0123456789abcdef0123456789abcdef".into(),
    ] {
        refused(&server, &manifest(&a.id, &query)).await;
        refused(&server, &stream(&a.id, &stream_id, &query)).await;
    }
    // Ids and stream names that are not a recording's, however they are spelled.
    let upper = a.id.to_uppercase();
    for id in [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2Fetc%2Fpasswd",
        "recordings",
        upper.as_str(),
        "0123456789abcdef0123456789abcdef",
    ] {
        refused(&server, &manifest(id, &format!("?k={ka}"))).await;
        refused(&server, &stream(id, &stream_id, &format!("?k={ka}"))).await;
    }
    for sid in [
        "manifest.json",
        "..%2Fmanifest.json",
        "%2e%2e%2f%2e%2e%2fhearth.db",
        "%2Fetc%2Fpasswd",
        "s99",
    ] {
        refused(&server, &stream(&a.id, sid, &format!("?k={ka}"))).await;
    }
    // Another session's recording with this session's host key.
    refused(&server, &manifest(&b.id, &format!("?k={ka}"))).await;

    // Sharing: a replay link opens the recording (to watch, not to manage), and only it.
    let share = format!("/api/recordings/{}/share?k={ka}", a.id);
    let (status, _, body) = server.request_raw("POST", &share, &[]).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let url = json(&body)["replay_url"].as_str().unwrap().to_owned();
    let replay_key = url.split("?r=").nth(1).unwrap().to_owned();
    let (status, _, body) = server
        .request_raw("GET", &manifest(&a.id, &format!("?r={replay_key}")), &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["access"], "replay");
    let (status, _, body) = server
        .request_raw(
            "GET",
            &stream(&a.id, &stream_id, &format!("?r={replay_key}")),
            &[],
        )
        .await;
    assert_eq!((status, body.len()), (200, on_disk.len()));
    refused(&server, &manifest(&b.id, &format!("?r={replay_key}"))).await;
    let (status, _, _) = server
        .request_raw("GET", &list(&a.session, &replay_key), &[])
        .await;
    assert_eq!(
        status, 401,
        "a replay link does not list the session's recordings"
    );
    for (method, path) in [
        ("DELETE", format!("/api/recordings/{}?r={replay_key}", a.id)),
        (
            "DELETE",
            format!("/api/recordings/{}/share?r={replay_key}", a.id),
        ),
        (
            "POST",
            format!("/api/recordings/{}/export?r={replay_key}", a.id),
        ),
    ] {
        let (status, _, body) = server.request_raw(method, &path, &[]).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_eq!(json(&body)["error"]["code"], ErrorCode::Forbidden.as_str());
    }
    let (status, _, body) = server.request_raw("GET", &list(&a.session, ka), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        json(&body)["recordings"][0]["replay_url"],
        url.as_str(),
        "the host sees the link"
    );

    // Revoking: the old link stops working; sharing again makes a new one.
    let (status, _, _) = server.request_raw("DELETE", &share, &[]).await;
    assert_eq!(status, 204);
    refused(&server, &manifest(&a.id, &format!("?r={replay_key}"))).await;
    refused(
        &server,
        &stream(&a.id, &stream_id, &format!("?r={replay_key}")),
    )
    .await;
    let (_, _, body) = server.request_raw("POST", &share, &[]).await;
    let again = json(&body)["replay_url"].as_str().unwrap().to_owned();
    assert_ne!(again, url, "a revoked link never comes back");

    // Deleting: gone from the list, the API and the disk.
    let (status, _, _) = server
        .request_raw("DELETE", &format!("/api/recordings/{}?k={ka}", a.id), &[])
        .await;
    assert_eq!(status, 204);
    refused(&server, &manifest(&a.id, &format!("?k={ka}"))).await;
    assert!(!dir.path().join("recordings").join(&a.id).exists());
    let (_, _, body) = server.request_raw("GET", &list(&a.session, ka), &[]).await;
    assert!(json(&body)["recordings"].as_array().unwrap().is_empty());
    // B is untouched.
    let (status, _, _) = server
        .request_raw("GET", &manifest(&b.id, &format!("?k={kb}")), &[])
        .await;
    assert_eq!(status, 200);
    drop((a.host, b.host));
}

/// The indexed state of recording `id`.
async fn state_of(server: &TestServer, id: &str, host_key: &str) -> serde_json::Value {
    let (_, _, body) = server
        .request_raw("GET", &format!("/api/recordings/{id}?k={host_key}"), &[])
        .await;
    json(&body)["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_of_a_room_everyone_left_stops_after_the_grace_period_but_not_before() {
    let dir = TempDir::new("hearth-rec-empty");
    let server = TestServer::start_with(ServerConfig {
        recordings_dir: Some(dir.path().join("recordings")),
        recording_empty_grace: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("Left running").await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.send(ClientMessage::StartRecording).await;
    eventually("recording starts", WAIT, || {
        host.snapshot().recording.is_some()
    })
    .await;
    let id = host.snapshot().recording.unwrap().id.to_string();

    // The host reloads the page: gone for a moment, back well within the grace period.
    host.vanish().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let back = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    assert!(
        back.snapshot().recording.is_some(),
        "still recording on return"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(state_of(&server, &id, &keys.host).await, "recording");

    // Now everyone is gone for good: the recording ends by itself.
    back.leave().await;
    let deadline = Instant::now() + WAIT;
    while state_of(&server, &id, &keys.host).await != "complete" {
        assert!(
            Instant::now() < deadline,
            "the recording of an empty room never stopped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendees_cannot_record_and_a_server_without_a_recording_directory_says_so() {
    let dir = TempDir::new("hearth-rec-refusals");
    let server = recording_server(&dir).await;
    let (session, keys) = server.create_session("refusals").await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    guest.send(ClientMessage::StartRecording).await;
    eventually("the attendee is refused", WAIT, || {
        guest
            .snapshot()
            .errors
            .iter()
            .any(|(code, _)| *code == ErrorCode::Forbidden)
    })
    .await;
    // REST with the invite key is refused too.
    let (status, _) = server
        .request_as(
            "POST",
            &format!("/api/sessions/{session}/recording"),
            None,
            Some(&keys.invite),
        )
        .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(host.snapshot().recording.is_none(), "nothing started");
    assert!(
        !dir.path().join("recordings").exists()
            || std::fs::read_dir(dir.path().join("recordings"))
                .unwrap()
                .next()
                .is_none()
    );

    let off = TestServer::start().await; // no recording directory
    let (session, keys) = off.create_session("no recording").await;
    let host = Participant::join(&off.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.send(ClientMessage::StartRecording).await;
    eventually("the host is told recording is unavailable", WAIT, || {
        host.snapshot()
            .errors
            .iter()
            .any(|(code, _)| *code == ErrorCode::RecordingUnavailable)
    })
    .await;
    let (status, body) = off
        .request_as(
            "POST",
            &format!("/api/sessions/{session}/recording"),
            None,
            Some(&keys.host),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("recording_unavailable"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_exports_to_one_grid_video_and_without_ffmpeg_says_why_not() {
    let dir = TempDir::new("hearth-rec-export");
    let server = recording_server(&dir).await;
    let rec = record_a_session(&server, &dir, "Export me").await;
    let key = &rec.keys.host;
    let export = format!("/api/recordings/{}/export?k={key}", rec.id);
    let (status, _, body) = server.request_raw("POST", &export, &[]).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let mut seen_progress = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, body) = server.request_raw("GET", &export, &[]).await;
        let status = json(&body);
        seen_progress.push(status["progress"].as_f64().unwrap_or(-1.0));
        match status["state"].as_str().unwrap() {
            "done" => break,
            "running" => {}
            other => panic!("export {other}: {status}"),
        }
        assert!(Instant::now() < deadline, "export did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("export progress seen: {seen_progress:?}");
    let (status, headers, body) = server
        .request_raw(
            "GET",
            &format!("/api/recordings/{}/export/file?k={key}", rec.id),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        headers.contains(&("content-type".into(), "video/mp4".into())),
        "{headers:?}"
    );
    let out = dir.path().join("export.mp4");
    std::fs::write(&out, &body).unwrap();
    let probe = ffprobe(&out);
    assert_eq!(probe.codec, "h264");
    let (_, _, m) = server
        .request_raw("GET", &format!("/api/recordings/{}?k={key}", rec.id), &[])
        .await;
    let recorded = json(&m)["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (probe.duration - recorded).abs() < 0.5,
        "{} s of {recorded} s",
        probe.duration
    );

    let without = TempDir::new("hearth-rec-noffmpeg");
    let server = TestServer::start_with(ServerConfig {
        recordings_dir: Some(without.path().join("recordings")),
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..ServerConfig::default()
    })
    .await;
    let rec = record_a_session(&server, &without, "No ffmpeg").await;
    let export = format!("/api/recordings/{}/export?k={}", rec.id, rec.keys.host);
    let (status, _, body) = server.request_raw("POST", &export, &[]).await;
    assert_eq!(status, 503);
    let error = json(&body);
    assert_eq!(error["error"]["code"], "export_unavailable");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ffmpeg")
    );
    let (_, _, body) = server.request_raw("GET", &export, &[]).await;
    assert_eq!(json(&body)["state"], "unavailable");
}
