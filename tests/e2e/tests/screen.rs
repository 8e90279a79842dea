//! Screen sharing: a second video track, declared as a screen, reaches others labelled so.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, PublishOptions};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::{MediaKind, TrackSource};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_arrives_as_its_own_labelled_track() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("screens").await;
    let mut presenter =
        Participant::join(&server.base, &session, "Presenter", keys.host(), LOCALHOST)
            .await
            .unwrap();
    let viewer = Participant::join(&server.base, &session, "Viewer", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    presenter
        .publish_with(PublishOptions {
            screen: true,
            video_packets_per_frame: 1,
            ..PublishOptions::default()
        })
        .await
        .unwrap();
    let pid = presenter.id().clone();
    eventually(
        "viewer is told of camera, microphone and screen",
        WAIT,
        || {
            let mut sources: Vec<TrackSource> = viewer
                .snapshot()
                .tracks
                .values()
                .filter(|t| t.participant_id == pid)
                .map(|t| t.source)
                .collect();
            sources.sort_by_key(|s| format!("{s:?}"));
            sources
                == [
                    TrackSource::Camera,
                    TrackSource::Microphone,
                    TrackSource::Screen,
                ]
        },
    )
    .await;
    let screen_id = viewer
        .snapshot()
        .tracks
        .values()
        .find(|t| t.source == TrackSource::Screen)
        .map(|t| t.id.to_string())
        .unwrap();
    eventually("viewer receives the screen's video", WAIT, || {
        viewer
            .snapshot()
            .received
            .get(&screen_id)
            .is_some_and(|r| r.kind == Some(MediaKind::Video) && r.intact > 10 && r.corrupt == 0)
    })
    .await;
    assert_eq!(server.occupancy(&session).await, (2, 3));
}
