//! `GET /metrics` on a live server: what an operator's dashboard shows while two people talk,
//! and after they leave.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{ClipSending, Participant, PublishOptions};
use hearth_e2e::media::{TempDir, clip};
use hearth_e2e::{LOCALHOST, TestServer};
use hearth_proto::ClientMessage;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `/metrics` every 100 ms until `check` holds, or panics after [`WAIT`] with the last
/// page.
async fn scrape_until(server: &TestServer, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, page) = server.request("GET", "/metrics", None).await;
        assert_eq!(status, 200, "{page}");
        if check(&page) {
            return page;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for: {what}\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_two_people_talking_and_leaving() {
    let recordings = TempDir::new("hearth-metrics");
    let server = TestServer::start_with(hearth_server::ServerConfig {
        recordings_dir: Some(recordings.path().to_owned()),
        ..hearth_server::ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("metrics").await;
    let mut a = Participant::join(&server.base, &session, "Zanzibar", keys.host(), LOCALHOST)
        .await
        .expect("a joins");
    let mut b = Participant::join(&server.base, &session, "Quixote", keys.invite(), LOCALHOST)
        .await
        .expect("b joins");
    for p in [&mut a, &mut b] {
        p.publish(3).await.expect("publish");
    }

    let page = scrape_until(&server, "media flowing between two people", |page| {
        let value = |name| sample(page, name).unwrap_or(-1.0);
        value("hearth_rtp_packets_out_total") > 100.0
            && value("hearth_participants") == 2.0
            && value("hearth_subscribed_tracks") == 4.0
    })
    .await;
    assert_eq!(sample(&page, "hearth_sessions"), Some(1.0));
    assert_eq!(sample(&page, "hearth_published_tracks"), Some(4.0));
    assert_eq!(sample(&page, "hearth_websocket_connections"), Some(2.0));
    assert!(sample(&page, "hearth_rtp_packets_in_total").unwrap() > 0.0);
    assert!(sample(&page, "hearth_rtp_bytes_out_total").unwrap() > 0.0);
    for secret in [
        session.as_str(),
        "Zanzibar",
        "Quixote",
        &keys.host,
        &keys.invite,
    ] {
        assert!(!page.contains(secret), "the page names no one: {secret}");
    }

    assert_eq!(sample(&page, "hearth_recording_active"), Some(0.0));
    a.send(ClientMessage::StartRecording).await;
    scrape_until(&server, "a recording in progress", |page| {
        sample(page, "hearth_recording_active") == Some(1.0)
    })
    .await;
    a.send(ClientMessage::StopRecording).await;
    scrape_until(&server, "the recording finished", |page| {
        sample(page, "hearth_recording_active") == Some(0.0)
    })
    .await;

    a.leave().await;
    b.leave().await;
    let page = scrape_until(&server, "everyone gone", |page| {
        sample(page, "hearth_participants") == Some(0.0)
            && sample(page, "hearth_subscribed_tracks") == Some(0.0)
            && sample(page, "hearth_websocket_connections") == Some(0.0)
    })
    .await;
    assert_eq!(sample(&page, "hearth_published_tracks"), Some(0.0));
    assert_eq!(
        sample(&page, "hearth_sessions"),
        Some(1.0),
        "the session outlives its last participant"
    );
    server.stop().await;
}

/// Loss on a publisher's way in shows in `/metrics`, which nothing else counts: a clip sent with
/// 30 % of its packets dropped before they leave (never sent, so no retransmission can fill the
/// holes) leaves as many sequence numbers missing as were dropped, and none arrive late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_lost_before_the_sfu_read_them_are_counted_as_missing() {
    let dir = TempDir::new("hearth-metrics-missing");
    let media = Arc::new(clip(dir.path(), 2, 30, 15));
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("lossy uplink").await;
    let mut publisher = Participant::join(&server.base, &session, "Up", keys.host(), LOCALHOST)
        .await
        .unwrap();
    publisher
        .publish_with(PublishOptions {
            clip: Some((
                media,
                ClipSending {
                    loss: 0.3,
                    seed: 11,
                },
            )),
            ..PublishOptions::default()
        })
        .await
        .unwrap();
    let missing = |page: &str| sample(page, "hearth_rtp_packets_in_missing_total").unwrap_or(0.0);
    // Counted from when media flows: drops before the SFU read a first packet are no hole.
    let start =
        missing(&scrape_until(&server, "holes in the stream", |p| missing(p) >= 20.0).await);
    let dropped_start = publisher.snapshot().packets_dropped_on_purpose as f64;
    let end = scrape_until(&server, "more holes", |p| missing(p) >= start + 100.0).await;
    let dropped = publisher.snapshot().packets_dropped_on_purpose as f64 - dropped_start;
    let counted = missing(&end) - start;
    // The two counters are read a moment apart, and a drop is a hole only once a later packet
    // arrives: a few packets either way.
    assert!(
        (counted - dropped).abs() <= 0.1 * dropped + 5.0,
        "{counted} missing for {dropped} dropped"
    );
    assert_eq!(sample(&end, "hearth_rtp_packets_in_late_total"), Some(0.0));
    server.stop().await;
}
