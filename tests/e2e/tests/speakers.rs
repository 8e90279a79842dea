//! Active speaker: the server reads the audio levels publishers put in their packets and tells
//! everyone who speaks and who holds the floor.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, PublishOptions};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::{ClientMessage, MediaKind};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn speaker(level: u8) -> PublishOptions {
    PublishOptions {
        video: false,
        audio_level: Some(level),
        ..PublishOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_louder_publisher_becomes_the_active_speaker() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("speakers").await;
    let mut ada = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let mut bo = Participant::join(&server.base, &session, "Bo", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let viewer = Participant::join(&server.base, &session, "Cy", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let (a, b) = (ada.id().clone(), bo.id().clone());

    // Ada speaks at -20 dBov, Bo at -45 dBov: both speak, Ada louder.
    ada.publish_with(speaker(20)).await.unwrap();
    bo.publish_with(speaker(45)).await.unwrap();
    eventually("the viewer sees Ada hold the floor", WAIT, || {
        let s = viewer.snapshot();
        s.active_speaker.as_ref() == Some(&a) && s.speaking == [a.clone(), b.clone()]
    })
    .await;
    assert_eq!(
        bo.snapshot().active_speaker.as_ref(),
        Some(&a),
        "speakers are told too"
    );

    // Ada falls silent and Bo speaks up: the floor passes to Bo, and Ada stops "speaking".
    ada.set_audio_level(127);
    bo.set_audio_level(15);
    eventually("the floor passes to Bo", WAIT, || {
        let s = viewer.snapshot();
        s.active_speaker.as_ref() == Some(&b) && s.speaking == [b.clone()]
    })
    .await;

    // A muted microphone is not heard, however loud the client says it is.
    bo.send(ClientMessage::Mute {
        kind: MediaKind::Audio,
        muted: true,
    })
    .await;
    eventually("muted Bo stops speaking", WAIT, || {
        viewer.snapshot().speaking.is_empty()
    })
    .await;
    assert_eq!(
        viewer.snapshot().active_speaker.as_ref(),
        Some(&b),
        "the last speaker keeps the floor through silence"
    );

    // Someone who joins now learns who holds the floor at once.
    let late = Participant::join(&server.base, &session, "Di", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    eventually("a late joiner is told who holds the floor", WAIT, || {
        late.snapshot().active_speaker.as_ref() == Some(&b)
    })
    .await;

    // The floor holder leaves: nobody holds it.
    bo.leave().await;
    eventually("the floor is free when its holder leaves", WAIT, || {
        let s = viewer.snapshot();
        s.active_speaker.is_none() && s.speaker_updates >= 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_without_levels_makes_nobody_a_speaker() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("no levels").await;
    let mut ada = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let viewer = Participant::join(&server.base, &session, "Cy", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    ada.publish_with(PublishOptions {
        video: false,
        ..PublishOptions::default()
    })
    .await
    .unwrap();
    let id = ada.id().clone();
    eventually("the viewer hears Ada", WAIT, || {
        viewer
            .snapshot()
            .received
            .values()
            .any(|r| r.from == id.as_str() && r.intact > 100)
    })
    .await;
    assert_eq!(
        viewer.snapshot().speaker_updates,
        0,
        "no levels, no speakers"
    );
    // Control: the same stream with a level does make her the speaker.
    ada.set_audio_level(20);
    eventually("with levels, Ada speaks", WAIT, || {
        viewer.snapshot().active_speaker.as_ref() == Some(&id)
    })
    .await;
}
