//! Attacks on a session, each asserting "refused, nothing changed": spoofed identity,
//! duplicate keys, floods, the N+1th join, a locked session, the waiting room, too many sockets
//! from one address, the API key. Attacks through links are in `links.rs`.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

mod common;

use common::{WAIT, refused, session, try_join};
use hearth_client::Signal;
use hearth_e2e::TestServer;
use hearth_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage, SessionId};
use hearth_server::ServerConfig;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_and_duplicate_keys_are_refused_and_nothing_is_said() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let mut guest = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    let host_id = host.id.to_string();
    for (text, code) in [
        (
            format!(r#"{{"type":"chat","text":"I am the host","from":"{host_id}"}}"#),
            ErrorCode::BadMessage,
        ),
        (
            r#"{"type":"chat","text":"I am the host","name":"Host"}"#.to_owned(),
            ErrorCode::BadMessage,
        ),
        (
            r#"{"type":"chat","text":"harmless","text":"evil"}"#.to_owned(),
            ErrorCode::BadJson,
        ),
        (
            r#"{"type":"chat","type":"end_session"}"#.to_owned(),
            ErrorCode::BadJson,
        ),
    ] {
        guest.s.send_text(text).await.unwrap();
        let m = guest
            .s
            .recv_until(WAIT, |m| {
                matches!(m, ServerMessage::Error { .. } | ServerMessage::Chat { .. })
            })
            .await
            .unwrap();
        assert!(
            matches!(&m, ServerMessage::Error { code: c, .. } if *c == code),
            "{m:?}"
        );
    }
    // A real message afterwards is stamped with the guest's own identity; nothing else was said.
    guest
        .s
        .send(&ClientMessage::Chat { text: "hi".into() })
        .await
        .unwrap();
    let m = host
        .s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Chat { .. }))
        .await
        .unwrap();
    match m {
        ServerMessage::Chat { message } => {
            assert_eq!(
                message.text, "hi",
                "no spoofed message got through before it"
            );
            assert_eq!(message.from, guest.id);
            assert_eq!(message.name, "Someone");
        }
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_then_cut_off_and_others_carry_on() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let mut flooder = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    // Chat has its own, tighter limit.
    for i in 0..8 {
        flooder
            .s
            .send(&ClientMessage::Chat {
                text: format!("spam {i}"),
            })
            .await
            .unwrap();
    }
    let mut limited = false;
    let mut chats = 0;
    while let Ok(m) = flooder.s.recv(Duration::from_millis(500)).await {
        match m {
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited = true,
            ServerMessage::Chat { .. } => chats += 1,
            _ => {}
        }
    }
    assert!(limited, "chat flood answered rate_limited");
    assert_eq!(
        chats, 5,
        "the burst allowance went through, the rest did not"
    );
    // Any message: a few hundred pings at once.
    for _ in 0..400 {
        if flooder
            .s
            .send(&ClientMessage::Ping { nonce: 1 })
            .await
            .is_err()
        {
            break;
        }
    }
    assert!(
        flooder.s.closed_within(WAIT).await,
        "a sustained flood is disconnected"
    );
    host.s
        .send(&ClientMessage::Ping { nonce: 9 })
        .await
        .unwrap();
    let pong = host
        .s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Pong { nonce: 9 }))
        .await;
    assert!(pong.is_ok(), "the host is unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_past_capacity_is_refused_but_the_host_gets_in() {
    let server = TestServer::start().await;
    let (id, keys) = server
        .create_session_with(serde_json::json!({"title": "small", "max_participants": 2}))
        .await;
    let _a = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    let _b = try_join(&server, &id, None, Some(&keys.invite), None)
        .await
        .ok()
        .unwrap();
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite),
        None,
        ErrorCode::SessionFull,
    )
    .await;
    assert_eq!(server.occupancy(&id).await.0, 2);
    assert!(
        try_join(&server, &id, Some(&keys.host), None, None)
            .await
            .is_ok(),
        "the host is never locked out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_session_keeps_newcomers_out() {
    let server = TestServer::start().await;
    let (id, keys) = session(&server).await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    host.s
        .send(&ClientMessage::UpdateSettings {
            change: hearth_proto::SettingsChange {
                locked: Some(true),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    host.s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::SettingsUpdated { .. }))
        .await
        .unwrap();
    refused(
        &server,
        &id,
        None,
        Some(&keys.invite),
        None,
        ErrorCode::SessionLocked,
    )
    .await;
    assert_eq!(server.occupancy(&id).await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_room_admits_and_declines() {
    let server = TestServer::start().await;
    let (id, keys) = server
        .create_session_with(serde_json::json!({"title": "lobby", "waiting_room": true}))
        .await;
    let mut host = try_join(&server, &id, Some(&keys.host), None, None)
        .await
        .ok()
        .unwrap();
    let knock = |name: &'static str| {
        let url = server.ws_url();
        let session = id.clone();
        let invite = keys.invite.clone();
        async move {
            let mut s = Signal::connect(&url).await.unwrap();
            s.send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                session_id: session,
                name: name.into(),
                host_key: None,
                invite_key: Some(invite),
                resume_token: None,
                resume: None,
            })
            .await
            .unwrap();
            assert!(matches!(
                s.recv(WAIT).await.unwrap(),
                ServerMessage::Waiting { .. }
            ));
            s
        }
    };
    let mut yes = knock("Yes").await;
    let mut no = knock("No").await;
    let waiting = match host
        .s
        .recv_until(
            WAIT,
            |m| matches!(m, ServerMessage::WaitingUpdated { waiting } if waiting.len() == 2),
        )
        .await
        .unwrap()
    {
        ServerMessage::WaitingUpdated { waiting } => waiting,
        _ => unreachable!(),
    };
    assert_eq!(server.occupancy(&id).await.0, 1, "waiting is not inside");
    let (y, n) = (waiting[0].id.clone(), waiting[1].id.clone());
    host.s
        .send(&ClientMessage::Admit {
            participant_id: y.clone(),
        })
        .await
        .unwrap();
    host.s
        .send(&ClientMessage::Decline { participant_id: n })
        .await
        .unwrap();
    let m = yes
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Joined { .. }))
        .await
        .unwrap();
    assert!(matches!(m, ServerMessage::Joined { participant_id, .. } if participant_id == y));
    let m = no
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Declined,
                ..
            }
        ),
        "{m:?}"
    );
    assert!(no.closed_within(WAIT).await);
    assert_eq!(server.occupancy(&id).await.0, 2);
    // An attendee cannot admit anyone.
    yes.send(&ClientMessage::Admit { participant_id: y })
        .await
        .unwrap();
    let m = yes
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_open_unlimited_sockets() {
    let server = TestServer::start_with(ServerConfig {
        max_connections_per_ip: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            Signal::connect(&server.ws_url())
                .await
                .expect("within the limit"),
        );
    }
    assert!(
        Signal::connect(&server.ws_url()).await.is_err(),
        "the fourth socket is refused (429)"
    );
    drop(open.pop());
    let mut reopened = false;
    for _ in 0..50 {
        if Signal::connect(&server.ws_url()).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "a slot is given back when a socket closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_guards_session_creation_and_minted_invites_expire() {
    let server = TestServer::start_with(ServerConfig {
        api_key: Some("integrator-secret".into()),
        ..ServerConfig::default()
    })
    .await;
    let (status, body) = server
        .request("POST", "/api/sessions", Some(r#"{"title":"x"}"#))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"));
    let post = |path: String, body: String, key: &'static str| {
        let server = &server;
        async move {
            server
                .request_as("POST", &path, Some(&body), Some(key))
                .await
        }
    };
    let (status, _) = post("/api/sessions".into(), r#"{"title":"x"}"#.into(), "wrong").await;
    assert_eq!(status, 401);
    let (status, body) = post(
        "/api/sessions".into(),
        r#"{"title":"x"}"#.into(),
        "integrator-secret",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = SessionId::from_string(v["id"].as_str().unwrap());
    // A speaker invite valid for one second.
    let (status, body) = post(
        format!("/api/sessions/{id}/invites"),
        r#"{"role":"speaker","expires_in_secs":1}"#.into(),
        "integrator-secret",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let key = v["invite_url"]
        .as_str()
        .unwrap()
        .split("?i=")
        .nth(1)
        .unwrap()
        .to_owned();
    let mut speaker = try_join(&server, &id, None, Some(&key), None)
        .await
        .ok()
        .expect("minted invite works");
    speaker
        .s
        .send(&ClientMessage::RaiseHand { raised: true })
        .await
        .unwrap();
    let m = speaker
        .s
        .recv_until(WAIT, |m| matches!(m, ServerMessage::Error { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "a speaker has no hand to raise: {m:?}"
    );
    let (status, _) = post(
        format!("/api/sessions/{id}/invites"),
        r#"{"role":"host"}"#.into(),
        "integrator-secret",
    )
    .await;
    assert_eq!(status, 400, "no invite makes a host");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    refused(&server, &id, None, Some(&key), None, ErrorCode::InvalidLink).await;
    assert_eq!(
        common::status(&server, &format!("/s/{id}?i={key}")).await,
        410,
        "an expired link is gone"
    );
}
