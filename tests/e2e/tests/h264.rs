//! H.264 through the SFU, end to end: a publisher that sends H.264 (and keyframes only when
//! asked) reaches subscribers intact, under the server's payload type, announced as H.264, in a
//! room where someone else publishes VP8.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, PublishOptions, Received, VideoCodec};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_media::MediaStats;
use hearth_proto::{MediaKind, ParticipantId};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Payload types the server offers on subscribe connections (`crates/media/src/codecs.rs`).
/// The clients publish with 109/98/100, so seeing these proves the per-subscriber rewrite.
const SERVER_PT_OPUS: u8 = 111;
const SERVER_PT_VP8: u8 = 96;
const SERVER_PT_H264: u8 = 102;

/// What `p` received of `from`'s `kind` track, if anything yet.
fn track_from(p: &Participant, from: &ParticipantId, kind: MediaKind) -> Option<Received> {
    p.snapshot()
        .received
        .into_values()
        .find(|r| r.from == from.as_str() && r.kind == Some(kind))
}

fn intact_from(p: &Participant, from: &ParticipantId, kind: MediaKind) -> u64 {
    track_from(p, from, kind).map_or(0, |r| r.intact)
}

/// The codec the server announced for `from`'s video track, as `p` was told it.
fn announced_video_codec(p: &Participant, from: &ParticipantId) -> Option<String> {
    p.snapshot()
        .tracks
        .into_values()
        .find(|t| &t.participant_id == from && t.kind == MediaKind::Video)
        .map(|t| t.codec)
}

/// Asserts that `p` receives `from`'s audio and video whole, in `codec` under `payload_type`.
fn assert_receives(
    p: &Participant,
    from: &ParticipantId,
    codec: &str,
    payload_type: u8,
    who: &str,
) {
    let video = track_from(p, from, MediaKind::Video).expect("video received");
    assert_eq!(video.codec, codec, "{who}: negotiated video codec");
    assert_eq!(
        video.payload_type, payload_type,
        "{who}: video payload type"
    );
    assert_eq!(video.corrupt, 0, "{who}: damaged or misattributed video");
    let audio = track_from(p, from, MediaKind::Audio).expect("audio received");
    assert_eq!(
        audio.payload_type, SERVER_PT_OPUS,
        "{who}: audio payload type"
    );
    assert_eq!(audio.corrupt, 0, "{who}: damaged or misattributed audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_reaches_subscribers_alongside_vp8() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("h264").await;

    // Hana publishes H.264 and, like a real encoder after its first frame, sends keyframes only
    // when asked.
    let mut hana = Participant::join(&server.base, &session, "Hana", keys.host(), LOCALHOST)
        .await
        .expect("hana joins");
    hana.publish_with(PublishOptions {
        video_packets_per_frame: 2,
        keyframe_every: None,
        video_codec: VideoCodec::H264,
        ..PublishOptions::default()
    })
    .await
    .expect("hana publishes h264");
    // Her one unprompted keyframe goes out to nobody.
    eventually("hana sent her first keyframe", WAIT, || {
        hana.snapshot().keyframes_sent >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Vic publishes VP8 in the same room; Sam only watches.
    let mut vic = Participant::join(&server.base, &session, "Vic", keys.invite(), LOCALHOST)
        .await
        .expect("vic joins");
    vic.publish(3).await.expect("vic publishes vp8");
    let sam = Participant::join(&server.base, &session, "Sam", keys.invite(), LOCALHOST)
        .await
        .expect("sam joins");
    let (ih, iv) = (hana.id().clone(), vic.id().clone());

    // Video can only start on a keyframe and Hana sends one only on request: Sam and Vic seeing
    // her video proves the SFU recognised H.264 keyframes and asked for them.
    eventually("sam and vic receive hana's h264 video", WAIT, || {
        intact_from(&sam, &ih, MediaKind::Video) >= 60
            && intact_from(&vic, &ih, MediaKind::Video) >= 60
    })
    .await;
    eventually(
        "sam and hana receive vic's vp8 video, everyone the audio",
        WAIT,
        || {
            intact_from(&sam, &iv, MediaKind::Video) >= 60
                && intact_from(&hana, &iv, MediaKind::Video) >= 60
                && intact_from(&sam, &ih, MediaKind::Audio) >= 30
                && intact_from(&vic, &ih, MediaKind::Audio) >= 30
                && intact_from(&sam, &iv, MediaKind::Audio) >= 30
                && intact_from(&hana, &iv, MediaKind::Audio) >= 30
        },
    )
    .await;
    assert!(
        hana.snapshot().keyframe_requests >= 1 && hana.snapshot().keyframes_sent >= 2,
        "the SFU asked hana for an h264 keyframe and she sent one"
    );
    assert!(MediaStats::get(&server.state.media_stats().keyframe_requests_sent) >= 1);

    // Everyone is told which codec each track is in, and receives it under the server's payload
    // type for that codec: one room, two video codecs, each subscriber rewritten per codec.
    for (p, who) in [(&sam, "sam"), (&vic, "vic")] {
        assert_eq!(
            announced_video_codec(p, &ih).as_deref(),
            Some("video/H264"),
            "{who} is told hana's video is h264"
        );
        assert_receives(p, &ih, "video/H264", SERVER_PT_H264, who);
    }
    for (p, who) in [(&sam, "sam"), (&hana, "hana")] {
        assert_eq!(
            announced_video_codec(p, &iv).as_deref(),
            Some("video/VP8"),
            "{who} is told vic's video is vp8"
        );
        assert_receives(p, &iv, "video/VP8", SERVER_PT_VP8, who);
    }
    for p in [&hana, &vic, &sam] {
        let errors = p.snapshot().errors;
        assert!(errors.is_empty(), "no errors: {errors:?}");
    }
    assert_eq!(server.occupancy(&session).await, (3, 4));

    sam.leave().await;
    vic.leave().await;
    hana.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_publisher_can_follow_a_vp8_one_to_the_same_subscriber() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("h264 after vp8").await;

    // Sam's subscribe connection first carries VP8, and only VP8.
    let sam = Participant::join(&server.base, &session, "Sam", keys.host(), LOCALHOST)
        .await
        .expect("sam joins");
    let mut vic = Participant::join(&server.base, &session, "Vic", keys.invite(), LOCALHOST)
        .await
        .expect("vic joins");
    vic.publish(2).await.expect("vic publishes vp8");
    let iv = vic.id().clone();
    eventually("sam receives vic's vp8 video", WAIT, || {
        intact_from(&sam, &iv, MediaKind::Video) >= 30
    })
    .await;

    // Vic leaves, freeing the m-section webrtc-rs will reuse for the next video track; then
    // Hana arrives with H.264. Sam must get it, though neither that m-section nor his
    // connection's first video m-section was negotiated for a VP8-only world.
    vic.leave().await;
    eventually("sam sees vic's tracks go", WAIT, || {
        sam.snapshot().tracks.is_empty()
    })
    .await;
    let mut hana = Participant::join(&server.base, &session, "Hana", keys.invite(), LOCALHOST)
        .await
        .expect("hana joins");
    hana.publish_with(PublishOptions {
        video_packets_per_frame: 2,
        keyframe_every: None,
        video_codec: VideoCodec::H264,
        ..PublishOptions::default()
    })
    .await
    .expect("hana publishes h264");
    let ih = hana.id().clone();
    eventually("sam receives hana's h264 video", WAIT, || {
        intact_from(&sam, &ih, MediaKind::Video) >= 60
            && intact_from(&sam, &ih, MediaKind::Audio) >= 30
    })
    .await;
    assert_eq!(
        announced_video_codec(&sam, &ih).as_deref(),
        Some("video/H264")
    );
    assert_receives(&sam, &ih, "video/H264", SERVER_PT_H264, "sam");
    let errors = sam.snapshot().errors;
    assert!(errors.is_empty(), "no errors: {errors:?}");

    sam.leave().await;
    hana.leave().await;
    server.stop().await;
}
