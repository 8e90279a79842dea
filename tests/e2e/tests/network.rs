//! Media on a bad network, in a private network namespace (see `hearth_e2e::netns`): one
//! participant's sockets live on their own loopback address, and nftables rules on that
//! address drop at random, or everything, while a named counter measures what it sends.
//!
//! Each test is a plain `#[test]` that re-runs itself inside `unshare --net`; the body runs in
//! a runtime made there.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, PublishOptions, Received};
use hearth_e2e::netns::{self, counter_bytes, nft};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_media::MediaConfig;
use hearth_proto::{MediaKind, ParticipantId};
use hearth_server::ServerConfig;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// How long each phase of a loss test measures.
const PHASE: Duration = Duration::from_secs(10);
/// The address of the participant whose link the rules shape.
const SHAPED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// nftables table the tests own.
const TABLE: &str = "hearth";

/// Video shaped like a camera: 1.5 Mbit/s at 30 fps, a keyframe every 3 s, packets up to 1200
/// bytes, so a lost packet costs a whole frame unless it is recovered.
fn camera() -> PublishOptions {
    PublishOptions {
        video_bitrate: Some(1_500_000),
        keyframe_every: Some(90),
        ..PublishOptions::default()
    }
}

fn tracks_from<'a>(
    p: &'a Participant,
    from: &'a ParticipantId,
    kind: MediaKind,
) -> impl Iterator<Item = Received> + 'a {
    p.snapshot()
        .received
        .into_values()
        .filter(move |r| r.from == from.as_str() && r.kind == Some(kind))
}

/// Intact media packets `p` received from `from`.
fn intact_from(p: &Participant, from: &ParticipantId) -> u64 {
    p.snapshot()
        .received
        .values()
        .filter(|r| r.from == from.as_str())
        .map(|r| r.intact)
        .sum()
}

/// (complete, incomplete, freezes) of the video `p` receives from `from`.
fn frames_from(p: &Participant, from: &ParticipantId) -> (u64, u64, u64) {
    tracks_from(p, from, MediaKind::Video).fold((0, 0, 0), |(c, i, f), r| {
        (
            c + r.frames.complete,
            i + r.frames.incomplete,
            f + r.frames.freezes,
        )
    })
}

/// A table whose output chain counts the UDP bytes the shaped address sends (`up`) and
/// receives (`down`); rules added later come after the counting.
fn count_shaped_traffic() {
    nft(&format!(
        "table inet {TABLE} {{
            counter up {{}}
            counter down {{}}
            chain out {{
                type filter hook output priority 0; policy accept;
                ip saddr {SHAPED} meta l4proto udp counter name up
                ip daddr {SHAPED} meta l4proto udp counter name down
            }}
        }}"
    ));
}

/// Drops `percent` of the UDP packets matching `selector` from now on.
fn drop_at_random(selector: &str, percent: u32) {
    nft(&format!(
        "add rule inet {TABLE} out {selector} meta l4proto udp numgen random mod 100 < {percent} drop"
    ));
}

/// A host on the machine's address and a guest on the shaped one, publishing to each other,
/// with media flowing both ways.
async fn host_and_guest(
    server: &TestServer,
    session: &hearth_proto::SessionId,
    keys: &hearth_e2e::Keys,
) -> (Participant, Participant) {
    let mut host = Participant::join(&server.base, session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.publish(1).await.unwrap();
    let mut guest = Participant::join(&server.base, session, "Guest", keys.invite(), SHAPED)
        .await
        .unwrap();
    guest.publish(1).await.unwrap();
    let (hid, gid) = (host.id().clone(), guest.id().clone());
    eventually("media flows both ways", WAIT, || {
        intact_from(&host, &gid) > 20 && intact_from(&guest, &hid) > 20
    })
    .await;
    (host, guest)
}

/// The shaped address's UDP goes nowhere, both ways, until the table is deleted; its
/// WebSocket (TCP) stays up.
fn cut_shaped_udp() {
    nft(&format!(
        "table inet {TABLE} {{
            chain out {{
                type filter hook output priority 0; policy accept;
                ip saddr {SHAPED} meta l4proto udp drop
                ip daddr {SHAPED} meta l4proto udp drop
            }}
        }}"
    ));
}

/// What one measured phase saw.
#[derive(Debug, Clone, Copy)]
struct Phase {
    up_bytes: u64,
    down_bytes: u64,
    frames: (u64, u64, u64),
}

/// Measures `PHASE` of traffic: the shaped address's bytes, and the frames `viewer` gets from
/// `from`.
async fn measure(viewer: &Participant, from: &ParticipantId) -> Phase {
    let (up, down) = (counter_bytes(TABLE, "up"), counter_bytes(TABLE, "down"));
    let (c, i, f) = frames_from(viewer, from);
    tokio::time::sleep(PHASE).await;
    let (c2, i2, f2) = frames_from(viewer, from);
    Phase {
        up_bytes: counter_bytes(TABLE, "up") - up,
        down_bytes: counter_bytes(TABLE, "down") - down,
        frames: (c2 - c, i2 - i, f2 - f),
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

#[test]
fn five_percent_loss_on_a_publishers_path_costs_no_frames_and_causes_no_storm() {
    if !netns::enter("five_percent_loss_on_a_publishers_path_costs_no_frames_and_causes_no_storm") {
        return;
    }
    netns::runtime().block_on(async {
        let server = TestServer::start().await;
        let (session, keys) = server.create_session("lossy publisher").await;
        let mut publisher = Participant::join(&server.base, &session, "P", keys.host(), SHAPED)
            .await
            .unwrap();
        publisher.publish_with(camera()).await.unwrap();
        let pid = publisher.id().clone();
        let viewer = Participant::join(&server.base, &session, "V", keys.invite(), LOCALHOST)
            .await
            .unwrap();
        count_shaped_traffic();
        eventually("the viewer decodes frames", WAIT, || {
            frames_from(&viewer, &pid).0 > 30
        })
        .await;

        let clean = measure(&viewer, &pid).await;
        // Both ways: the publisher's media and the SFU's NACKs and reports to it.
        drop_at_random(&format!("ip saddr {SHAPED}"), 5);
        drop_at_random(&format!("ip daddr {SHAPED}"), 5);
        let lossy = measure(&viewer, &pid).await;
        let kept = ratio(lossy.frames.0, clean.frames.0);
        let upstream = ratio(lossy.up_bytes, clean.up_bytes);
        println!(
            "publisher 5% loss: complete frames {} -> {} ({kept:.3}), incomplete {} -> {}, \
             freezes {} -> {}, upstream bytes {} -> {} ({upstream:.3}x)",
            clean.frames.0,
            lossy.frames.0,
            clean.frames.1,
            lossy.frames.1,
            clean.frames.2,
            lossy.frames.2,
            clean.up_bytes,
            lossy.up_bytes,
        );
        assert!(clean.frames.0 > 200, "the lossless run decodes: {clean:?}");
        assert!(kept >= 0.9, "frames kept under loss: {kept:.3}");
        assert!(upstream <= 1.3, "upstream grew {upstream:.3}x: a storm");
        server.stop().await;
    });
}

#[test]
fn five_percent_loss_on_a_viewers_path_is_repaired_by_the_sfu_not_the_publisher() {
    if !netns::enter("five_percent_loss_on_a_viewers_path_is_repaired_by_the_sfu_not_the_publisher")
    {
        return;
    }
    netns::runtime().block_on(async {
        let server = TestServer::start().await;
        let (session, keys) = server.create_session("lossy viewer").await;
        // Here the viewer sits on the shaped address; a second address counts the publisher.
        let publisher_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let mut publisher =
            Participant::join(&server.base, &session, "P", keys.host(), publisher_ip)
                .await
                .unwrap();
        publisher.publish_with(camera()).await.unwrap();
        let pid = publisher.id().clone();
        let viewer = Participant::join(&server.base, &session, "V", keys.invite(), SHAPED)
            .await
            .unwrap();
        let other = Participant::join(&server.base, &session, "W", keys.invite(), LOCALHOST)
            .await
            .unwrap();
        count_shaped_traffic();
        nft(&format!(
            "add counter inet {TABLE} publisher
             insert rule inet {TABLE} out ip saddr {publisher_ip} meta l4proto udp counter name publisher"
        ));
        eventually("both viewers decode frames", WAIT, || {
            frames_from(&viewer, &pid).0 > 30 && frames_from(&other, &pid).0 > 30
        })
        .await;

        let from_publisher = counter_bytes(TABLE, "publisher");
        let clean = measure(&viewer, &pid).await;
        let clean_publisher = counter_bytes(TABLE, "publisher") - from_publisher;
        let other_before = frames_from(&other, &pid).0;
        drop_at_random(&format!("ip daddr {SHAPED}"), 5);
        drop_at_random(&format!("ip saddr {SHAPED}"), 5);
        let from_publisher = counter_bytes(TABLE, "publisher");
        let lossy = measure(&viewer, &pid).await;
        let lossy_publisher = counter_bytes(TABLE, "publisher") - from_publisher;
        let other_frames = frames_from(&other, &pid).0 - other_before;
        let kept = ratio(lossy.frames.0, clean.frames.0);
        let publisher_growth = ratio(lossy_publisher, clean_publisher);
        let downstream = ratio(lossy.down_bytes, clean.down_bytes);
        println!(
            "viewer 5% loss: complete frames {} -> {} ({kept:.3}), incomplete {} -> {}, \
             freezes {} -> {}; bytes to the viewer {} -> {} ({downstream:.3}x); the publisher \
             sent {clean_publisher} -> {lossy_publisher} ({publisher_growth:.3}x); the other \
             viewer completed {other_frames} frames meanwhile",
            clean.frames.0,
            lossy.frames.0,
            clean.frames.1,
            lossy.frames.1,
            clean.frames.2,
            lossy.frames.2,
            clean.down_bytes,
            lossy.down_bytes,
        );
        assert!(clean.frames.0 > 200, "the lossless run decodes: {clean:?}");
        assert!(kept >= 0.9, "frames kept under loss: {kept:.3}");
        // Compared with what the publisher sent in the same interval: how fast the publisher
        // sends varies with the machine's load, the share the SFU adds on top does not.
        let clean_overhead = ratio(clean.down_bytes, clean_publisher);
        let lossy_overhead = ratio(lossy.down_bytes, lossy_publisher);
        assert!(
            lossy_overhead > clean_overhead,
            "the SFU resent what the viewer lost: {clean_overhead:.3} -> {lossy_overhead:.3} \
             bytes to the viewer per byte from the publisher"
        );
        assert!(
            publisher_growth <= 1.1,
            "the viewer's loss reached the publisher: {publisher_growth:.3}x"
        );
        assert!(
            other_frames as f64 >= 0.95 * clean.frames.0 as f64,
            "the other viewer is untouched: {other_frames}"
        );
        server.stop().await;
    });
}

#[test]
fn a_participant_cut_off_for_five_seconds_comes_back_without_a_new_join() {
    if !netns::enter("a_participant_cut_off_for_five_seconds_comes_back_without_a_new_join") {
        return;
    }
    netns::runtime().block_on(async {
        let server = TestServer::start().await;
        let (session, keys) = server.create_session("wifi switch").await;
        let (host, guest) = host_and_guest(&server, &session, &keys).await;
        let (hid, gid) = (host.id().clone(), guest.id().clone());

        // The guest's UDP goes nowhere, both ways; its WebSocket (TCP) stays.
        cut_shaped_udp();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (to_host, to_guest) = (intact_from(&host, &gid), intact_from(&guest, &hid));
        tokio::time::sleep(Duration::from_secs(4)).await;
        let cut = (
            intact_from(&host, &gid) - to_host,
            intact_from(&guest, &hid) - to_guest,
        );
        assert_eq!(cut, (0, 0), "nothing gets through while the link is down");
        nft(&format!("delete table inet {TABLE}"));

        let (to_host, to_guest) = (intact_from(&host, &gid), intact_from(&guest, &hid));
        eventually("media flows both ways again", WAIT, || {
            intact_from(&host, &gid) > to_host + 100 && intact_from(&guest, &hid) > to_guest + 100
        })
        .await;
        let (h, g) = (host.snapshot(), guest.snapshot());
        assert!(!h.left.contains(&gid), "the host never saw the guest leave");
        assert_eq!(
            g.participant_id.as_ref(),
            Some(&gid),
            "the same participant"
        );
        assert_eq!(g.resumes, 0, "no new join, not even a resume");
        assert!(g.errors.is_empty(), "{:?}", g.errors);
        assert_eq!(server.occupancy(&session).await.0, 2);
        server.stop().await;
    });
}

#[test]
fn after_an_outage_longer_than_ice_waits_an_ice_restart_brings_media_back() {
    if !netns::enter("after_an_outage_longer_than_ice_waits_an_ice_restart_brings_media_back") {
        return;
    }
    netns::runtime().block_on(async {
        // The server gives a silent connection up after 2 + 3 s (25 s more by default), so the
        // outage below outlasts it: ICE has failed on the server's side, and consent checks
        // alone never bring the connection back.
        let server = TestServer::start_with(ServerConfig {
            media: MediaConfig {
                ice_disconnected: Duration::from_secs(2),
                ice_failed: Duration::from_secs(3),
                ..MediaConfig::default()
            },
            ..ServerConfig::default()
        })
        .await;
        let (session, keys) = server.create_session("long outage").await;
        let (host, mut guest) = host_and_guest(&server, &session, &keys).await;
        let (hid, gid) = (host.id().clone(), guest.id().clone());

        cut_shaped_udp();
        tokio::time::sleep(Duration::from_secs(8)).await;
        nft(&format!("delete table inet {TABLE}"));
        // The link is back, but the server's side of it has failed: nothing flows.
        let (to_host, to_guest) = (intact_from(&host, &gid), intact_from(&guest, &hid));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stuck = (
            intact_from(&host, &gid) - to_host,
            intact_from(&guest, &hid) - to_guest,
        );
        assert_eq!(stuck, (0, 0), "a failed connection does not heal by itself");

        guest.restart_ice().await.unwrap();
        let (to_host, to_guest) = (intact_from(&host, &gid), intact_from(&guest, &hid));
        eventually("media flows both ways after the ICE restart", WAIT, || {
            intact_from(&host, &gid) > to_host + 100 && intact_from(&guest, &hid) > to_guest + 100
        })
        .await;
        let g = guest.snapshot();
        assert_eq!(
            g.participant_id.as_ref(),
            Some(&gid),
            "the same participant"
        );
        assert_eq!(g.resumes, 0, "no new join");
        assert!(g.errors.is_empty(), "{:?}", g.errors);
        assert!(
            !host.snapshot().left.contains(&gid),
            "the host never saw the guest leave"
        );
        server.stop().await;
    });
}
