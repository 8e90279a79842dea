//! Bad input over the real WebSocket: each case gets a clear error with a stable code, the
//! socket is closed when the code is fatal, and nobody else in the session notices.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::{Participant, Signal};
use hearth_e2e::{Keys, LOCALHOST, TestServer, eventually};
use hearth_proto::{
    ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, MediaKind, PROTOCOL_VERSION, ServerMessage,
    SessionId,
};
use hearth_server::ServerConfig;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn expect_error(signal: &mut Signal, code: ErrorCode) -> String {
    match signal.recv(WAIT).await {
        Ok(ServerMessage::Error { code: got, message }) => {
            assert_eq!(got, code, "error code (message: {message})");
            message
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

async fn expect_alive(signal: &mut Signal) {
    signal
        .send(&ClientMessage::Ping { nonce: 42 })
        .await
        .expect("ping");
    let pong = signal
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Pong { .. }))
        .await
        .expect("socket still open after a survivable error");
    assert_eq!(pong, ServerMessage::Pong { nonce: 42 });
}

fn join(session: &SessionId, keys: &Keys) -> ClientMessage {
    ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: "Mallory".into(),
        host_key: None,
        invite_key: Some(keys.invite.clone()),
        resume_token: None,
        resume: None,
    }
}

async fn joined_socket(server: &TestServer, session: &SessionId, keys: &Keys) -> Signal {
    let mut s = Signal::connect(&server.ws_url()).await.expect("connect");
    s.send(&join(session, keys)).await.expect("join");
    let joined = s.recv(WAIT).await.expect("joined");
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_gets_bad_json_and_the_socket_survives() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = joined_socket(&server, &session, &keys).await;
    s.send_text("{\"type\": \"ping\",").await.unwrap();
    expect_error(&mut s, ErrorCode::BadJson).await;
    s.send_text("[\"join\"]").await.unwrap();
    expect_error(&mut s, ErrorCode::BadJson).await;
    expect_alive(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_gets_unknown_type() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = joined_socket(&server, &session, &keys).await;
    s.send_text(r#"{"type":"become_host"}"#).await.unwrap();
    expect_error(&mut s, ErrorCode::UnknownType).await;
    s.send_text(r#"{"no_type":true}"#).await.unwrap();
    expect_error(&mut s, ErrorCode::UnknownType).await;
    // A known type with wrong fields is a different, equally stable code.
    s.send_text(r#"{"type":"mute","kind":"smell","muted":true}"#)
        .await
        .unwrap();
    expect_error(&mut s, ErrorCode::BadMessage).await;
    expect_alive(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_message_is_refused_and_the_socket_closed() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = joined_socket(&server, &session, &keys).await;
    let sdp = "v".repeat(MAX_MESSAGE_BYTES + 1);
    s.send(&ClientMessage::PublishOffer {
        sdp,
        sources: Default::default(),
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::MessageTooLarge).await;
    assert!(
        s.closed_within(WAIT).await,
        "socket closed after message_too_large"
    );
    // The room no longer counts the sender.
    let mut gone = false;
    for _ in 0..100 {
        if server.occupancy(&session).await.0 == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "disconnected sender left the room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_are_refused() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = joined_socket(&server, &session, &keys).await;
    s.send_binary(vec![0, 1, 2]).await.unwrap();
    expect_error(&mut s, ErrorCode::BinaryNotSupported).await;
    assert!(s.closed_within(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_before_join_get_not_joined() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = Signal::connect(&server.ws_url()).await.unwrap();
    s.send(&ClientMessage::PublishOffer {
        sdp: "v=0".into(),
        sources: Default::default(),
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::NotJoined).await;
    s.send(&ClientMessage::Mute {
        kind: MediaKind::Audio,
        muted: true,
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::NotJoined).await;
    // Ping is allowed before join, and join still works afterwards.
    expect_alive(&mut s).await;
    s.send(&join(&session, &keys)).await.unwrap();
    assert!(matches!(
        s.recv(WAIT).await.unwrap(),
        ServerMessage::Joined { .. }
    ));
    s.send(&join(&session, &keys)).await.unwrap();
    expect_error(&mut s, ErrorCode::AlreadyJoined).await;
    assert_eq!(
        server.occupancy(&session).await.0,
        1,
        "a second join adds nobody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_sdp_gets_invalid_sdp() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut s = joined_socket(&server, &session, &keys).await;
    s.send(&ClientMessage::PublishOffer {
        sources: Default::default(),
        sdp: "this is not sdp".into(),
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::InvalidSdp).await;
    s.send(&ClientMessage::PublishOffer {
        sources: Default::default(),
        sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
            .into(),
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::InvalidSdp).await;
    s.send(&ClientMessage::SubscribeAnswer { sdp: "v=0".into() })
        .await
        .unwrap();
    expect_error(&mut s, ErrorCode::UnexpectedAnswer).await;
    s.send_text(
        r#"{"type":"candidate","target":"publish","candidate":{"candidate":"candidate:garbage"}}"#,
    )
    .await
    .unwrap();
    // Held until an offer arrives; a flood of them is refused rather than stored.
    let mut refused = false;
    for _ in 0..40 {
        s.send_text(r#"{"type":"candidate","target":"publish","candidate":{"candidate":"candidate:garbage"}}"#)
            .await
            .unwrap();
    }
    while let Ok(m) = s.recv(Duration::from_secs(1)).await {
        if matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::InvalidCandidate,
                ..
            }
        ) {
            refused = true;
        }
    }
    assert!(
        refused,
        "too many early candidates are refused with invalid_candidate"
    );
    expect_alive(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_and_wrong_version_are_refused_and_closed() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;

    let mut s = Signal::connect(&server.ws_url()).await.unwrap();
    s.send(&join(&SessionId::from_string("no-such-session"), &keys))
        .await
        .unwrap();
    expect_error(&mut s, ErrorCode::UnknownSession).await;
    assert!(s.closed_within(WAIT).await);

    let mut s = Signal::connect(&server.ws_url()).await.unwrap();
    s.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION + 1,
        session_id: session.clone(),
        name: "Future".into(),
        host_key: None,
        invite_key: Some(keys.invite.clone()),
        resume_token: None,
        resume: None,
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::UnsupportedVersion).await;
    assert!(s.closed_within(WAIT).await);

    // A forged host key does not make you host, and does not let you in.
    let mut s = Signal::connect(&server.ws_url()).await.unwrap();
    s.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: "Forger".into(),
        host_key: Some("00000000000000000000000000000000".into()),
        invite_key: None,
        resume_token: None,
        resume: None,
    })
    .await
    .unwrap();
    expect_error(&mut s, ErrorCode::InvalidLink).await;
    assert!(s.closed_within(WAIT).await);

    // An empty name is refused, with a message that says why; the socket may try again.
    let mut s = Signal::connect(&server.ws_url()).await.unwrap();
    s.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: "   ".into(),
        host_key: None,
        invite_key: Some(keys.invite.clone()),
        resume_token: None,
        resume: None,
    })
    .await
    .unwrap();
    let message = expect_error(&mut s, ErrorCode::BadMessage).await;
    assert!(message.contains("name"), "{message}");
    assert_eq!(server.occupancy(&session).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_timed_out() {
    let server = TestServer::start_with(ServerConfig {
        join_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(1200),
        ping_interval: Duration::from_millis(300),
        // A silent socket may be a dead link, so its participant is held for a resume first.
        resume_grace: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("t").await;

    // Connects and never joins.
    let mut never_joins = Signal::connect(&server.ws_url()).await.unwrap();
    expect_error(&mut never_joins, ErrorCode::JoinTimeout).await;
    assert!(never_joins.closed_within(WAIT).await);

    // Joins, then goes silent: it does not even read, so it answers no pings.
    let mut silent = joined_socket(&server, &session, &keys).await;
    assert_eq!(server.occupancy(&session).await.0, 1);
    // Without reading, so without answering pings: the server must drop it on its own.
    let mut dropped = false;
    for _ in 0..100 {
        if server.occupancy(&session).await.0 == 0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dropped,
        "timed-out client left the room once the resume grace ran out"
    );
    // What it finds when it finally reads: the idle_timeout error, or (if its client library
    // first tries to answer the queued pings) a socket already closed by the server.
    match silent
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
        .await
    {
        Ok(ServerMessage::Error { code, .. }) => assert_eq!(code, ErrorCode::IdleTimeout),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(hearth_client::SignalError::Timeout) => panic!("socket still open"),
        Err(_) => {}
    }
}

/// While every kind of bad input hits the same session, two real participants keep exchanging
/// media and see no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_does_not_disturb_other_participants() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("t").await;
    let mut a = Participant::join(&server.base, &session, "Ada", keys.host(), LOCALHOST)
        .await
        .unwrap();
    let mut b = Participant::join(&server.base, &session, "Bo", keys.invite(), LOCALHOST)
        .await
        .unwrap();
    a.publish(1).await.unwrap();
    b.publish(1).await.unwrap();
    let ia = a.id().clone();
    let received_from_a = |p: &Participant| -> u64 {
        p.snapshot()
            .received
            .values()
            .filter(|r| r.from == ia.as_str())
            .map(|r| r.intact)
            .sum()
    };
    eventually("b receives a", WAIT, || received_from_a(&b) > 20).await;

    let mut hostile = joined_socket(&server, &session, &keys).await;
    for text in [
        "{{{{".to_owned(),
        r#"{"type":"explode"}"#.to_owned(),
        r#"{"type":"publish_offer","sdp":"garbage"}"#.to_owned(),
        r#"{"type":"subscribe_answer","sdp":"garbage"}"#.to_owned(),
        r#"{"type":"join","version":1,"session_id":"x","name":"again"}"#.to_owned(),
    ] {
        hostile.send_text(text).await.unwrap();
    }
    hostile
        .send_text("x".repeat(MAX_MESSAGE_BYTES + 10))
        .await
        .unwrap();
    assert!(hostile.closed_within(WAIT).await);
    let mut unknown = Signal::connect(&server.ws_url()).await.unwrap();
    unknown
        .send(&join(&SessionId::from_string("nope"), &keys))
        .await
        .unwrap();

    let before = received_from_a(&b);
    eventually("b keeps receiving a", WAIT, || {
        received_from_a(&b) > before + 50
    })
    .await;
    for p in [&a, &b] {
        let snap = p.snapshot();
        assert!(
            snap.errors.is_empty(),
            "bystander saw errors: {:?}",
            snap.errors
        );
        assert!(!snap.closed);
    }
}
