//! Stage sessions and remote mute with real media: attendees cannot publish until brought on
//! stage, lose their tracks when taken off, and a host's mute silences a track at the SFU.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::Participant;
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::{ClientMessage, ErrorCode, MediaKind, ParticipantId, Role};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn packets_from(p: &Participant, from: &ParticipantId, kind: MediaKind) -> u64 {
    p.snapshot()
        .received
        .values()
        .filter(|r| r.from == from.as_str() && r.kind == Some(kind))
        .map(|r| r.intact)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendees_publish_only_on_stage_and_host_mute_silences_them() {
    let server = TestServer::start().await;
    let (session, keys) = server
        .create_session_with(serde_json::json!({"title": "stage", "shape": "stage"}))
        .await;
    let mut host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.publish(1).await.unwrap();
    let mut guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let (hid, gid) = (host.id().clone(), guest.id().clone());

    // The audience sees the stage.
    eventually("guest watches the host", WAIT, || {
        packets_from(&guest, &hid, MediaKind::Video) > 10
    })
    .await;
    // But may not publish: refused with `forbidden`.
    assert!(
        guest.publish(1).await.is_err(),
        "an attendee cannot publish on a stage"
    );
    assert!(
        guest
            .snapshot()
            .errors
            .iter()
            .any(|(c, _)| *c == ErrorCode::Forbidden)
    );
    assert_eq!(
        server.occupancy(&session).await,
        (2, 2),
        "only the host's tracks exist"
    );
    guest.leave().await;

    // A fresh attendee raises a hand; the host brings them on stage; now they publish.
    let mut guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let gid2 = guest.id().clone();
    assert_ne!(gid, gid2);
    guest.send(ClientMessage::RaiseHand { raised: true }).await;
    eventually("host sees the raised hand", WAIT, || {
        host.snapshot()
            .participants
            .get(&gid2)
            .is_some_and(|p| p.hand_raised)
    })
    .await;
    host.send(ClientMessage::SetRole {
        participant_id: gid2.clone(),
        role: Role::Speaker,
    })
    .await;
    eventually("guest learns it is a speaker", WAIT, || {
        guest
            .snapshot()
            .me
            .is_some_and(|me| me.role == Role::Speaker && !me.hand_raised)
    })
    .await;
    guest.publish(1).await.expect("a speaker publishes");
    eventually("host receives the speaker", WAIT, || {
        packets_from(&host, &gid2, MediaKind::Video) > 10
            && packets_from(&host, &gid2, MediaKind::Audio) > 10
    })
    .await;

    // Remote mute: the speaker is told, and the SFU stops forwarding their audio even though
    // this client keeps sending it. Video carries on.
    host.send(ClientMessage::MuteParticipant {
        participant_id: gid2.clone(),
        kind: MediaKind::Audio,
    })
    .await;
    eventually("speaker told of the mute", WAIT, || {
        guest.snapshot().muted_by_host.contains(&MediaKind::Audio)
    })
    .await;
    eventually("host sees the speaker muted", WAIT, || {
        host.snapshot()
            .participants
            .get(&gid2)
            .is_some_and(|p| p.audio_muted)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // packets already in flight
    let (audio, video) = (
        packets_from(&host, &gid2, MediaKind::Audio),
        packets_from(&host, &gid2, MediaKind::Video),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        packets_from(&host, &gid2, MediaKind::Audio),
        audio,
        "muted audio is not forwarded"
    );
    assert!(
        packets_from(&host, &gid2, MediaKind::Video) > video + 10,
        "video still flows"
    );
    // Only the speaker can unmute.
    guest
        .send(ClientMessage::Mute {
            kind: MediaKind::Audio,
            muted: false,
        })
        .await;
    eventually("audio flows again after the speaker unmutes", WAIT, || {
        packets_from(&host, &gid2, MediaKind::Audio) > audio + 10
    })
    .await;

    // Off stage: their tracks are unpublished for everyone and their media stops.
    host.send(ClientMessage::SetRole {
        participant_id: gid2.clone(),
        role: Role::Attendee,
    })
    .await;
    eventually("host sees the speaker's tracks go", WAIT, || {
        host.snapshot()
            .tracks
            .values()
            .all(|t| t.participant_id != gid2)
    })
    .await;
    let frozen = packets_from(&host, &gid2, MediaKind::Video);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        packets_from(&host, &gid2, MediaKind::Video),
        frozen,
        "no media from someone off stage"
    );
    assert_eq!(server.occupancy(&session).await, (2, 2));
}
