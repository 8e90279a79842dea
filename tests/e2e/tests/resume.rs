//! Resuming after a lost signaling socket: the page comes back on a new WebSocket as the same
//! participant, its media never having stopped, while a closed tab still leaves at once.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, Signal};
use hearth_e2e::{LOCALHOST, TestServer, eventually};
use hearth_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ParticipantId, ServerMessage};
use hearth_server::ServerConfig;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn media_from(p: &Participant, from: &ParticipantId) -> u64 {
    p.snapshot()
        .received
        .values()
        .filter(|r| r.from == from.as_str())
        .map(|r| r.intact)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_who_loses_its_socket_resumes_as_the_same_participant() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("resume").await;
    let mut host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    host.publish(1).await.unwrap();
    let mut guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    guest.publish(1).await.unwrap();
    let (hid, gid) = (host.id().clone(), guest.id().clone());
    eventually("media flows both ways", WAIT, || {
        media_from(&host, &gid) > 20 && media_from(&guest, &hid) > 20
    })
    .await;

    guest.lose_signaling().await;
    // While the guest has no socket, its media keeps flowing both ways, nobody sees it leave,
    // and the room moves on: a chat line, and a newcomer who publishes.
    let (to_host, to_guest) = (media_from(&host, &gid), media_from(&guest, &hid));
    eventually("media flows without the socket", WAIT, || {
        media_from(&host, &gid) > to_host + 50 && media_from(&guest, &hid) > to_guest + 50
    })
    .await;
    host.send(ClientMessage::Chat {
        text: "while you were away".into(),
    })
    .await;
    let mut late = Participant::join(&server.base, &session, "Late", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    late.publish(1).await.unwrap();
    let lid = late.id().clone();
    eventually("the host sees the newcomer's media", WAIT, || {
        media_from(&host, &lid) > 10
    })
    .await;
    assert!(
        !host.snapshot().left.contains(&gid),
        "a lost socket is not a departure"
    );

    assert!(guest.resume_signaling().await.unwrap(), "resumed");
    assert_eq!(guest.id(), &gid, "the same participant");
    let s = guest.snapshot();
    assert!(
        s.participants.contains_key(&lid),
        "joined describes the room as it is now"
    );
    assert!(
        s.chat.iter().any(|m| m.text == "while you were away"),
        "with the chat it missed"
    );
    // The newcomer's track was added to the guest's connection while it was away; the offer
    // for it comes on the new socket.
    eventually("the guest receives the newcomer's media", WAIT, || {
        media_from(&guest, &lid) > 10
    })
    .await;
    assert!(!host.snapshot().left.contains(&gid));
    assert_eq!(server.occupancy(&session).await.0, 3);
    let metrics = server.request("GET", "/metrics", None).await.1;
    assert!(
        metrics.contains("hearth_participants_resumed_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_socket_of_the_same_page_takes_over_and_the_old_one_is_told() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("takeover").await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    let gid = guest.id().clone();
    let token = guest.snapshot().resume_token;
    // The old socket is still open (the server has not noticed it is dead, say).
    let join = |resume_token: String, resume: ParticipantId| ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: "Guest".into(),
        host_key: None,
        invite_key: Some(keys.invite.clone()),
        resume_token: Some(resume_token),
        resume: Some(resume),
    };

    // Someone else's token does not take the guest over: they join as someone new.
    let mut forger = Signal::connect(&server.ws_url()).await.unwrap();
    forger
        .send(&join(
            "0123456789abcdef0123456789abcdef".into(),
            gid.clone(),
        ))
        .await
        .unwrap();
    match forger.recv(WAIT).await.unwrap() {
        ServerMessage::Joined {
            participant_id,
            resumed,
            ..
        } => {
            assert_ne!(participant_id, gid, "a fresh participant");
            assert!(!resumed);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!guest.snapshot().closed, "the guest is untouched");

    // The guest's own token does.
    let mut newer = Signal::connect(&server.ws_url()).await.unwrap();
    newer.send(&join(token, gid.clone())).await.unwrap();
    match newer.recv(WAIT).await.unwrap() {
        ServerMessage::Joined {
            participant_id,
            resumed,
            ..
        } => {
            assert_eq!(participant_id, gid);
            assert!(resumed);
        }
        other => panic!("unexpected {other:?}"),
    }
    eventually("the old socket is told and closed", WAIT, || {
        let s = guest.snapshot();
        s.closed && s.errors.iter().any(|(c, _)| *c == ErrorCode::Replaced)
    })
    .await;
    assert!(!host.snapshot().left.contains(&gid), "still present");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_lost_for_longer_than_the_grace_ends_the_participant() {
    let server = TestServer::start_with(ServerConfig {
        resume_grace: Duration::from_millis(800),
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("grace").await;
    let host = Participant::join(&server.base, &session, "Host", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let mut guest = Participant::join(&server.base, &session, "Guest", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    guest.publish(1).await.unwrap();
    let gid = guest.id().clone();
    eventually("the host gets the guest's media", WAIT, || {
        media_from(&host, &gid) > 10
    })
    .await;
    guest.lose_signaling().await;
    eventually("the guest leaves when the grace runs out", WAIT, || {
        let s = host.snapshot();
        s.left.contains(&gid) && s.tracks.is_empty()
    })
    .await;
    assert!(
        !guest.resume_signaling().await.unwrap(),
        "too late to resume"
    );
    eventually("only the host remains", WAIT, || true).await;
    let mut alone = false;
    for _ in 0..100 {
        if server.occupancy(&session).await == (1, 0) {
            alone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alone, "{:?}", server.occupancy(&session).await);
}
