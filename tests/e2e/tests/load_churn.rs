//! A short churn run shaped like the load tool's (`hearth-bench run --scenario churn`): visitors
//! join at a steady pace, overlap, publish bitrate-shaped media or just watch, and go (half with
//! `leave`, half like a closed tab). Afterwards the server holds nobody and no tracks, and the
//! process (server and clients alike) is back to the descriptors it started with.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{JoinOptions, Participant, PublishOptions};
use hearth_e2e::{Keys, LOCALHOST, TestServer};
use hearth_proto::SessionId;
use std::time::Duration;

/// Visitors in the measured churn.
const VISITS: usize = 12;
/// Between two joins, and how long each visitor stays: about four are in at any moment.
const PACE: Duration = Duration::from_millis(150);
const STAY: Duration = Duration::from_millis(600);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Video shaped like the load tool's, at a bitrate that keeps the test light.
fn shaped() -> PublishOptions {
    PublishOptions {
        video_bitrate: Some(300_000),
        keyframe_every: Some(30),
        ..PublishOptions::default()
    }
}

/// One visit: every third visitor only watches; even ones leave politely, odd ones vanish.
/// Returns the packets it received.
async fn visit(base: String, session: SessionId, keys: Keys, i: usize) -> u64 {
    let options = JoinOptions {
        receive_only: i % 3 == 2,
        ..JoinOptions::default()
    };
    let name = format!("Visitor {i}");
    let mut p = Participant::join_with(&base, &session, &name, keys.invite(), LOCALHOST, options)
        .await
        .unwrap();
    if i % 3 != 2 {
        p.publish_with(shaped()).await.unwrap();
    }
    tokio::time::sleep(STAY).await;
    let received = p.traffic().received.values().map(|r| r.intact).sum::<u64>();
    let snap = p.snapshot();
    assert!(snap.errors.is_empty(), "visitor {i}: {:?}", snap.errors);
    if i.is_multiple_of(2) {
        p.leave().await;
    } else {
        p.vanish().await;
    }
    received
}

/// Polls the session's occupancy (up to 10 s) until it is empty; returns the last reading.
async fn settled_occupancy(server: &TestServer, session: &SessionId) -> (usize, usize) {
    let mut last = server.occupancy(session).await;
    for _ in 0..200 {
        if last == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = server.occupancy(session).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_churn_of_overlapping_visits_leaves_no_participants_tracks_or_descriptors() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("load churn").await;

    // Warm-up: one visit of each kind, so sockets, timers and pools the runtime creates lazily
    // exist before the baseline is taken.
    for i in [0, 2] {
        visit(server.base.clone(), session.clone(), keys.clone(), i).await;
    }
    assert_eq!(settled_occupancy(&server, &session).await, (0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = open_fds();

    let mut visits = Vec::new();
    for i in 0..VISITS {
        visits.push(tokio::spawn(visit(
            server.base.clone(),
            session.clone(),
            keys.clone(),
            i,
        )));
        tokio::time::sleep(PACE).await;
    }
    let mut received = 0;
    for v in visits {
        received += v.await.unwrap();
    }
    assert!(
        received > 0,
        "overlapping visitors received each other's media"
    );

    assert_eq!(
        settled_occupancy(&server, &session).await,
        (0, 0),
        "every visitor and every track is gone"
    );
    // Descriptors go back to where they were, give or take a few still closing.
    let mut fds = open_fds();
    for _ in 0..100 {
        if fds <= baseline + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds = open_fds();
    }
    eprintln!("open descriptors: baseline {baseline}, after {VISITS} visits {fds}");
    assert!(fds <= baseline + 4, "descriptor leak: {baseline} -> {fds}");
    server.stop().await;
}
