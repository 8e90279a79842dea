//! Keyframe requests through the SFU: a new subscriber gets a keyframe from a publisher that
//! only sends them on request, and storms of requests, from one subscriber or twenty, reach the
//! publisher coalesced and throttled.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{JoinOptions, Participant, PublishOptions};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_media::MediaStats;
use hearth_proto::MediaKind;
use hearth_server::ServerConfig;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_keyframes_on_join_and_request_storms_are_throttled() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("keyframes").await;
    let mut a = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .unwrap();
    a.publish_with(PublishOptions {
        video_packets_per_frame: 2,
        keyframe_every: None,
        ..PublishOptions::default()
    })
    .await
    .unwrap();
    // A's one unprompted keyframe goes out to nobody.
    eventually("a sent its first keyframe", WAIT, || {
        a.snapshot().keyframes_sent >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // B joins late. Its video can only start on a keyframe, and A sends one only if asked: B
    // seeing A's video proves the SFU asked on B's behalf.
    let b = Participant::join(&server.base, &session, "Bo", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let ia = a.id().clone();
    let video_from_a = |p: &Participant| -> u64 {
        p.snapshot()
            .received
            .values()
            .filter(|r| r.from == ia.as_str() && r.kind == Some(MediaKind::Video))
            .map(|r| r.intact)
            .sum()
    };
    eventually("b decodes a's video", WAIT, || video_from_a(&b) > 30).await;
    assert!(
        a.snapshot().keyframe_requests >= 1,
        "the SFU asked a for a keyframe"
    );
    let stats = server.state.media_stats();
    assert!(MediaStats::get(&stats.keyframe_requests_sent) >= 1);

    // B floods PLIs: 20 every 100 ms for 2 s (400 requests).
    let before = a.snapshot().keyframe_requests;
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(
            b.request_keyframes(&ia, 20).await,
            1,
            "b asks for a's one video track"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reached = a.snapshot().keyframe_requests - before;
    // One request per 500 ms window, plus the one deferred to the end of the last window. The
    // bound follows the time the flood really took, so a slow machine does not fail the test.
    let windows = started.elapsed().as_millis().div_ceil(500) as u64;
    eprintln!(
        "keyframe storm: 400 PLIs from a subscriber, {reached} reached the publisher; server saw {} from subscribers",
        MediaStats::get(&stats.keyframe_requests_from_subscribers)
    );
    assert!(reached >= 1, "subscriber keyframe requests are relayed");
    assert!(
        reached <= windows + 1,
        "throttled to one per 500 ms: {reached} requests in {windows} windows"
    );
    assert!(MediaStats::get(&stats.keyframe_requests_from_subscribers) >= 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_requests_from_twenty_viewers_reach_the_publisher_coalesced() {
    // 21 participants from one address: more than the default per-address limit.
    let server = TestServer::start_with(ServerConfig {
        max_connections_per_ip: 64,
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("pli storm").await;
    let mut a = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .unwrap();
    a.publish_with(PublishOptions {
        video_packets_per_frame: 2,
        keyframe_every: None,
        audio: false,
        ..PublishOptions::default()
    })
    .await
    .unwrap();
    let ia = a.id().clone();
    let options = JoinOptions {
        receive_only: true,
        ..JoinOptions::default()
    };
    let mut viewers = Vec::new();
    for n in 0..20 {
        let name = format!("Viewer {n}");
        let viewer = Participant::join_with(
            &server.base,
            &session,
            &name,
            keys.invite(),
            LOCALHOST,
            options.clone(),
        )
        .await
        .unwrap();
        viewers.push(viewer);
    }
    let receives_video = |p: &Participant| {
        p.snapshot()
            .received
            .values()
            .any(|r| r.from == ia.as_str() && r.kind == Some(MediaKind::Video) && r.intact > 0)
    };
    eventually("every viewer receives a's video", WAIT, || {
        viewers.iter().all(receives_video)
    })
    .await;
    // Let the join-time requests drain before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every viewer asks for a keyframe every 100 ms for 3 s: 600 requests, 200 a second, as
    // browsers might after a loss burst that hit everyone.
    let stats = server.state.media_stats();
    let (before, from_subscribers) = (
        a.snapshot().keyframe_requests,
        MediaStats::get(&stats.keyframe_requests_from_subscribers),
    );
    let started = std::time::Instant::now();
    for _ in 0..30 {
        for viewer in &viewers {
            assert_eq!(viewer.request_keyframes(&ia, 1).await, 1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let seconds = started.elapsed().as_secs_f64();
    let reached = a.snapshot().keyframe_requests - before;
    let sent_by_viewers =
        MediaStats::get(&stats.keyframe_requests_from_subscribers) - from_subscribers;
    let windows = started.elapsed().as_millis().div_ceil(500) as u64;
    eprintln!(
        "PLI storm: {sent_by_viewers} requests from 20 viewers over {seconds:.1} s, {reached} \
         reached the publisher ({:.2}/s)",
        reached as f64 / seconds
    );
    assert!(
        sent_by_viewers >= 500,
        "the server saw the storm: {sent_by_viewers}"
    );
    assert!(reached >= 1, "requests are relayed");
    assert!(
        reached <= windows + 1,
        "coalesced to one per 500 ms: {reached} requests in {windows} windows"
    );
    server.stop().await;
}
