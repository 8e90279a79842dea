//! Recording when things go wrong, with the real binary: the server is killed with SIGKILL in
//! the middle of a recording, and a disk fills up while recording. Both use a real publisher
//! (headless webrtc-rs) sending real VP8 and Opus.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{ClipSending, Key, Participant, PublishOptions};
use hearth_e2e::media::{TempDir, clip, decode_errors, ffprobe};
use hearth_e2e::{LOCALHOST, eventually, http};
use hearth_proto::{ClientMessage, SessionId};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// The binary, running; killed when dropped.
struct Hearth {
    child: Child,
    base: String,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits for its `listening on` line.
fn start(mut cmd: Command) -> Hearth {
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hearth");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("`listening on` within 20 s");
    Hearth { child, base }
}

fn hearth(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--rtc-ip",
        "127.0.0.1",
        "--data-dir",
    ])
    .arg(data)
    .env_remove("HEARTH_RECORDINGS_DIR")
    .env_remove("HEARTH_DISABLE_RECORDING");
    cmd
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Creates a session; returns its id, host key and invite key.
async fn session(base: &str) -> (SessionId, String, String) {
    let host = base.trim_start_matches("http://").to_owned();
    let body = r#"{"title":"Crash test"}"#;
    let request = format!(
        "POST /api/sessions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let key = v["host_url"].as_str().unwrap().split("?k=").nth(1).unwrap();
    let invite = v["invite_url"]
        .as_str()
        .unwrap()
        .split("?i=")
        .nth(1)
        .unwrap();
    (
        SessionId::from_string(v["id"].as_str().unwrap()),
        key.to_owned(),
        invite.to_owned(),
    )
}

/// A host who publishes a looping clip.
async fn publishing_host(base: &str, session: &SessionId, key: &str, dir: &Path) -> Participant {
    let media = Arc::new(clip(dir, 1, 30, 15));
    let mut host = Participant::join(base, session, "Host", Key::Host(key.into()), LOCALHOST)
        .await
        .unwrap();
    host.publish_with(PublishOptions {
        clip: Some((media, ClipSending::default())),
        ..PublishOptions::default()
    })
    .await
    .unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_interrupted_by_kill_9_is_recovered_at_restart_and_plays_to_the_kill() {
    let dir = TempDir::new("hearth-kill9");
    let data = dir.path().join("data");
    let server = start(hearth(&data));
    let (session, key, _) = session(&server.base).await;
    let host = publishing_host(&server.base, &session, &key, dir.path()).await;
    host.send(ClientMessage::StartRecording).await;
    eventually("recording starts", WAIT, || {
        host.snapshot().recording.is_some()
    })
    .await;
    let started = Instant::now();
    let id = host.snapshot().recording.unwrap().id.to_string();
    tokio::time::sleep(Duration::from_secs(6)).await;

    // No goodbye: SIGKILL, as a crash or the OOM killer would.
    let recorded = started.elapsed().as_secs_f64();
    drop(server);
    drop(host);

    let server = start(hearth(&data));
    let (_, _, body) = http(
        &server.base,
        "GET",
        &format!("/api/sessions/{session}/recordings?k={key}"),
        &[],
    )
    .await;
    let listed = json(&body);
    let entry = &listed["recordings"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["state"], "recovered", "{listed}");
    let (_, _, body) = http(
        &server.base,
        "GET",
        &format!("/api/recordings/{id}?k={key}"),
        &[],
    )
    .await;
    let manifest = json(&body);
    let streams = manifest["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{manifest}");
    for stream in streams {
        let path = data
            .join("recordings")
            .join(&id)
            .join(stream["file"].as_str().unwrap());
        let probe = ffprobe(&path);
        let end = (stream["start_ms"].as_f64().unwrap() + stream["duration_ms"].as_f64().unwrap())
            / 1000.0;
        println!(
            "{}: recovered up to {end:.2} s of {recorded:.2} s recorded before the kill",
            stream["file"]
        );
        assert!(
            end > recorded - 2.0,
            "{}: plays to {end} s, the kill came at {recorded} s",
            stream["file"]
        );
        assert!(
            (probe.duration - stream["duration_ms"].as_f64().unwrap() / 1000.0).abs() < 0.5,
            "ffprobe: {} s",
            probe.duration
        );
        assert_eq!(
            decode_errors(&path),
            "",
            "{} decodes cleanly",
            stream["file"]
        );
        // The repaired file is whole: its index is there, so players can seek.
        assert!(
            hearth_webm_has_cues(&path),
            "{} has its index",
            stream["file"]
        );
    }
}

fn hearth_webm_has_cues(path: &Path) -> bool {
    // Seeking to the middle decodes without error only if the file can be seeked.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", "2", "-i"])
        .arg(path)
        .args(["-frames:a", "1", "-frames:v", "1", "-f", "null", "-"])
        .output()
        .unwrap();
    out.status.success() && out.stderr.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_with_an_error_for_the_host_and_the_session_goes_on() {
    let dir = TempDir::new("hearth-diskfull");
    let data = dir.path().join("data");
    let recordings = dir.path().join("small-disk");
    std::fs::create_dir_all(&recordings).unwrap();
    // A real file system that fills up: a 300 KiB tmpfs, mounted in a mount namespace of the
    // server's own (nothing outside the test sees it). Unprivileged with a user namespace, or as
    // root without one.
    let flags = ["-rm", "-m"]
        .into_iter()
        .find(|flags| {
            Command::new("unshare")
                .args([*flags, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("this test needs `unshare` (util-linux) and either unprivileged user namespaces or root, to mount a small tmpfs");
    let mut cmd = Command::new("unshare");
    cmd.args([flags, "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=300k tmpfs "$1" && exec "$2" --listen 127.0.0.1:0 --rtc-ip 127.0.0.1 --data-dir "$3" --recordings-dir "$1""#)
        .arg("sh")
        .arg(&recordings)
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg(&data);
    let server = start(cmd);
    let (session, key, invite) = session(&server.base).await;
    let host = publishing_host(&server.base, &session, &key, dir.path()).await;
    let viewer = Participant::join(
        &server.base,
        &session,
        "Viewer",
        Key::Invite(invite),
        LOCALHOST,
    )
    .await
    .unwrap();
    host.send(ClientMessage::StartRecording).await;
    eventually("recording starts", WAIT, || {
        host.snapshot().recording.is_some()
    })
    .await;
    eventually(
        "the full disk stops the recording and the host is told why",
        WAIT,
        || {
            let s = host.snapshot();
            s.recording.is_none() && !s.recording_errors.is_empty()
        },
    )
    .await;
    let error = host.snapshot().recording_errors[0].clone();
    println!("host was told: {error}");
    assert!(error.contains("full"), "{error}");
    eventually("the viewer sees it stopped", WAIT, || {
        viewer.snapshot().recording.is_none()
    })
    .await;
    assert!(
        viewer.snapshot().recording_errors.is_empty(),
        "the reason is for hosts only"
    );

    // The live session did not notice: media keeps flowing to the viewer.
    let received =
        |p: &Participant| -> u64 { p.snapshot().received.values().map(|r| r.packets).sum() };
    let before = received(&viewer);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        received(&viewer) > before + 50,
        "media still flows after the disk filled"
    );
    let (_, _, body) = http(
        &server.base,
        "GET",
        &format!("/api/sessions/{session}/recordings?k={key}"),
        &[],
    )
    .await;
    let listed = json(&body);
    assert_eq!(listed["recordings"][0]["state"], "failed", "{listed}");
    assert!(
        listed["recordings"][0]["error"]
            .as_str()
            .unwrap()
            .contains("full"),
        "{listed}"
    );
}
