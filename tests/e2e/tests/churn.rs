//! Joining and leaving over and over leaves nothing behind: no participants, tracks, tiles (as
//! the remaining participant sees them) or sockets.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::Participant;
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::MediaKind;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_join_and_leave_leaves_no_stale_state() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("churn").await;
    let mut host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.publish(1).await.unwrap();

    // One warm-up round so lazily created runtime resources exist before the baseline.
    let mut rounds = Vec::new();
    for round in 0..7 {
        if round == 1 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            rounds.push(open_fds());
        }
        let mut guest = Participant::join(
            &server.base,
            &session,
            &format!("Guest {round}"),
            keys.invite(),
            LOCALHOST,
        )
        .await
        .unwrap();
        guest.publish(1).await.unwrap();
        let gid = guest.id().clone();
        eventually("host receives the guest's video", WAIT, || {
            host.snapshot()
                .received
                .values()
                .any(|r| r.from == gid.as_str() && r.kind == Some(MediaKind::Video) && r.intact > 5)
        })
        .await;
        if round % 2 == 0 {
            guest.leave().await;
        } else {
            guest.vanish().await; // a closed tab says nothing
        }
        eventually("host sees the guest gone", WAIT, || {
            let s = host.snapshot();
            s.participants.is_empty() && s.tracks.is_empty() && s.left.contains(&gid)
        })
        .await;
    }
    let mut settled = false;
    for _ in 0..100 {
        if server.occupancy(&session).await == (1, 2) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        settled,
        "only the host and its two tracks remain: {:?}",
        server.occupancy(&session).await
    );
    let snap = host.snapshot();
    assert_eq!(
        snap.left.len(),
        7,
        "every guest's departure was announced once"
    );
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    // Each guest's audio and video took two media sections in the host's subscribe offer; the
    // sections of tracks that ended are reused, or every visit would lengthen every later
    // renegotiation for good.
    assert!(
        snap.offer_sections <= 4,
        "the host's subscribe offer grew to {} media sections over 7 guests",
        snap.offer_sections
    );

    // Sockets and other descriptors go back to where they were (a little slack for timers and
    // sockets still closing).
    let baseline = rounds[0];
    let mut fds = open_fds();
    for _ in 0..60 {
        if fds <= baseline + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds = open_fds();
    }
    eprintln!("open descriptors: baseline {baseline}, after 6 more rounds {fds}");
    assert!(fds <= baseline + 4, "descriptor leak: {baseline} -> {fds}");
    server.stop().await;
}
