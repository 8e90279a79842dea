//! Media through the SFU, end to end: real server, real WebSocket, real webrtc-rs peers.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, Snapshot};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::{MediaKind, ParticipantId};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Tracks in `snap` received from `from`, by kind, with at least `min` intact packets.
fn receiving(snap: &Snapshot, from: &ParticipantId, kind: MediaKind, min: u64) -> bool {
    snap.received
        .values()
        .any(|r| r.from == from.as_str() && r.kind == Some(kind) && r.intact >= min)
}

fn receives_everyone(p: &Participant, others: &[&ParticipantId], min: u64) -> bool {
    let snap = p.snapshot();
    others.iter().all(|o| {
        receiving(&snap, o, MediaKind::Audio, min) && receiving(&snap, o, MediaKind::Video, min)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_exchange_intact_media_and_see_leaves_and_late_joins() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("e2e").await;

    let mut a = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .expect("a joins");
    let mut b = Participant::join(&server.base, &session, "Bo", keys.invite(), LOCALHOST)
        .await
        .expect("b joins");
    let mut c = Participant::join(&server.base, &session, "Cy", keys.invite(), LOCALHOST)
        .await
        .expect("c joins");
    for p in [&mut a, &mut b, &mut c] {
        p.publish(3).await.expect("publish");
    }
    let (ia, ib, ic) = (a.id().clone(), b.id().clone(), c.id().clone());

    // Everyone receives everyone else's audio and video, every packet intact and from the
    // sender the track claims.
    eventually("all three receive the other two", WAIT, || {
        receives_everyone(&a, &[&ib, &ic], 50)
            && receives_everyone(&b, &[&ia, &ic], 50)
            && receives_everyone(&c, &[&ia, &ib], 50)
    })
    .await;
    for p in [&a, &b, &c] {
        let snap = p.snapshot();
        assert!(
            !snap
                .received
                .keys()
                .any(|t| snap.received[t].from == p.id().as_str()),
            "nobody receives their own tracks back"
        );
        for (track, r) in &snap.received {
            assert_eq!(
                r.corrupt, 0,
                "track {track}: corrupted or misattributed packets"
            );
            // The clients publish with payload types 109/98; the server offers 111/96 on
            // subscribe connections. Seeing the server's numbers proves the per-subscriber
            // rewrite (webrtc-rs drops packets whose type was not negotiated).
            let expected = if r.kind == Some(MediaKind::Video) {
                96
            } else {
                111
            };
            assert_eq!(
                r.payload_type, expected,
                "payload type rewritten for the subscriber"
            );
        }
        assert!(snap.errors.is_empty(), "no errors: {:?}", snap.errors);
    }
    // Each subscriber gets its own SSRC for the same published track.
    let a_video_ssrc_at = |p: &Participant| {
        p.snapshot()
            .received
            .values()
            .find(|r| r.from == ia.as_str() && r.kind == Some(MediaKind::Video))
            .map(|r| r.ssrc)
            .expect("video from a")
    };
    assert_ne!(
        a_video_ssrc_at(&b),
        a_video_ssrc_at(&c),
        "per-subscriber SSRC"
    );
    assert_eq!(server.occupancy(&session).await, (3, 6));

    // C leaves: A and B see the leave and C's two tracks unpublished, and C's media stops.
    c.leave().await;
    eventually("a and b see c leave and its tracks end", WAIT, || {
        [&a, &b].iter().all(|p| {
            let s = p.snapshot();
            s.left.contains(&ic)
                && !s.participants.contains_key(&ic)
                && s.tracks.values().all(|t| t.participant_id != ic)
                && s.unpublished.len() == 2
        })
    })
    .await;
    let frozen: Vec<u64> = [&a, &b]
        .iter()
        .map(|p| {
            p.snapshot()
                .received
                .values()
                .filter(|r| r.from == ic.as_str())
                .map(|r| r.packets)
                .sum()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later: Vec<u64> = [&a, &b]
        .iter()
        .map(|p| {
            p.snapshot()
                .received
                .values()
                .filter(|r| r.from == ic.as_str())
                .map(|r| r.packets)
                .sum()
        })
        .collect();
    assert_eq!(frozen, later, "no media from someone who left");
    assert_eq!(server.occupancy(&session).await, (2, 4));

    // A late joiner receives every track already published, without publishing anything.
    let d = Participant::join(&server.base, &session, "Di", keys.invite(), LOCALHOST)
        .await
        .expect("d joins");
    let joined = d.snapshot();
    assert_eq!(joined.participants.len(), 2, "d sees a and b at join");
    assert_eq!(
        joined.tracks.len(),
        4,
        "d is told of the four existing tracks at join"
    );
    eventually("late joiner receives a's and b's media", WAIT, || {
        receives_everyone(&d, &[&ia, &ib], 30)
    })
    .await;
    // ...and media keeps flowing between the others.
    eventually("a still receives b", WAIT, || {
        receives_everyone(&a, &[&ib], 200)
    })
    .await;

    d.leave().await;
    a.leave().await;
    b.vanish().await; // like closing the tab: no leave message
    eventually("room is empty again", WAIT, || true).await;
    let mut empty = false;
    for _ in 0..200 {
        if server.occupancy(&session).await == (0, 0) {
            empty = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(empty, "room empty after everyone left, tracks gone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_sender_reports_for_every_forwarded_track() {
    // Without them a browser cannot line up a speaker's voice with their lips. The SFU makes
    // its own for each down track (its SSRCs and timestamps are not the publisher's).
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("reports").await;
    let mut a = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .expect("a joins");
    let b = Participant::join(&server.base, &session, "Bo", keys.invite(), LOCALHOST)
        .await
        .expect("b joins");
    a.publish(3).await.expect("publish");
    let ia = a.id().clone();
    eventually(
        "b hears sender reports for a's audio and video",
        WAIT,
        || {
            let snap = b.snapshot();
            [MediaKind::Audio, MediaKind::Video].iter().all(|kind| {
                snap.received.values().any(|r| {
                    r.from == ia.as_str() && r.kind == Some(*kind) && r.sender_reports >= 2
                })
            })
        },
    )
    .await;
}
