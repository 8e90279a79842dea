//! Sessions survive a restart: stop the server, start it on the same data directory, and the
//! same links work, chat history is there, and media flows again.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::Participant;
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::MediaKind;
use hearth_server::ServerConfig;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: Some(dir.to_path_buf()),
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_chat_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("hearth-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let server = TestServer::start_with(config(&dir)).await;
    let (session, keys) = server.create_session("Survivor").await;
    let (ended, ended_keys) = server.create_session("Ended").await;
    {
        let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
            .await
            .unwrap();
        let guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
            .await
            .unwrap();
        host.send(hearth_proto::ClientMessage::Chat {
            text: "before the restart".into(),
        })
        .await;
        eventually("the first message is in", WAIT, || {
            guest.snapshot().chat.len() == 1
        })
        .await;
        guest
            .send(hearth_proto::ClientMessage::Chat {
                text: "see you on the other side".into(),
            })
            .await;
        eventually("both messages are in", WAIT, || {
            host.snapshot().chat.len() == 2
        })
        .await;
        let other = Participant::join(&server.base, &ended, "Host", ended_keys.host(), LOCALHOST)
            .await
            .unwrap();
        other.send(hearth_proto::ClientMessage::EndSession).await;
        eventually("the other session ended", WAIT, || other.snapshot().closed).await;
    }
    assert!(server.stop().await, "first server stopped");

    let server = TestServer::start_with(config(&dir)).await;
    let mut host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .expect("the host link works after a restart");
    let chat: Vec<String> = host
        .snapshot()
        .chat
        .iter()
        .map(|m| format!("{}: {}", m.name, m.text))
        .collect();
    assert_eq!(
        chat,
        [
            "Host: before the restart",
            "Guest: see you on the other side"
        ]
    );
    let mut guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .expect("the invite link works after a restart");
    assert_eq!(
        guest.snapshot().chat.len(),
        2,
        "late joiners get the history too"
    );
    // Media simply re-joins.
    host.publish(1).await.unwrap();
    guest.publish(1).await.unwrap();
    let hid = host.id().clone();
    eventually("guest receives the host's video again", WAIT, || {
        guest
            .snapshot()
            .received
            .values()
            .any(|r| r.from == hid.as_str() && r.kind == Some(MediaKind::Video) && r.intact > 10)
    })
    .await;
    // The ended session stays ended.
    let refused =
        Participant::join(&server.base, &ended, "Host", ended_keys.host(), LOCALHOST).await;
    assert!(
        matches!(
            refused,
            Err(hearth_client::ClientError::Refused(
                hearth_proto::ErrorCode::SessionEnded,
                _
            ))
        ),
        "{:?}",
        refused.err()
    );
    assert!(server.stop().await);
    let _ = std::fs::remove_dir_all(&dir);
}
