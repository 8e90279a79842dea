//! The server's edges: media ports come from the configured range and are given back, and a
//! shutdown tells connected clients instead of cutting them off.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::Signal;
use hearth_e2e::{TestServer, loopback_udp_ports};
use hearth_media::{MediaConfig, PortRange};
use hearth_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use hearth_server::ServerConfig;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_sockets_use_the_configured_port_range_and_are_released() {
    // A range no other test uses, so counting sockets in it is meaningful.
    let range = PortRange {
        min: 47_310,
        max: 47_329,
    };
    let in_range = || {
        loopback_udp_ports()
            .into_iter()
            .filter(|p| (range.min..=range.max).contains(p))
            .count()
    };
    let server = TestServer::start_with(ServerConfig {
        media: MediaConfig {
            ports: Some(range),
            ..MediaConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let (session, keys) = server.create_session("ports").await;
    assert_eq!(in_range(), 0);
    let mut joined = Vec::new();
    for name in ["a", "b", "c"] {
        let mut s = Signal::connect(&server.ws_url()).await.unwrap();
        s.send(&ClientMessage::Join {
            version: PROTOCOL_VERSION,
            session_id: session.clone(),
            name: name.into(),
            host_key: None,
            invite_key: Some(keys.invite.clone()),
            resume_token: None,
            resume: None,
        })
        .await
        .unwrap();
        assert!(matches!(
            s.recv(WAIT).await.unwrap(),
            ServerMessage::Joined { .. }
        ));
        joined.push(s);
    }
    // Two connections (publish, subscribe) per participant, all inside the range.
    assert_eq!(in_range(), 6, "ports in use: {:?}", loopback_udp_ports());
    for mut s in joined {
        s.send(&ClientMessage::Leave).await.unwrap();
        assert!(s.closed_within(WAIT).await);
    }
    let mut released = false;
    for _ in 0..100 {
        if in_range() == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        released,
        "ports released after leaving: {} still bound",
        in_range()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_connected_clients_and_completes() {
    let server = TestServer::start().await;
    let (session, keys) = server.create_session("bye").await;
    let mut joined = Signal::connect(&server.ws_url()).await.unwrap();
    joined
        .send(&ClientMessage::Join {
            version: PROTOCOL_VERSION,
            session_id: session,
            name: "Stayer".into(),
            host_key: None,
            invite_key: Some(keys.invite.clone()),
            resume_token: None,
            resume: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        joined.recv(WAIT).await.unwrap(),
        ServerMessage::Joined { .. }
    ));
    let mut lobby = Signal::connect(&server.ws_url()).await.unwrap();

    let stopping = tokio::spawn(server.stop());
    for s in [&mut joined, &mut lobby] {
        match s.recv(WAIT).await {
            Ok(ServerMessage::Error { code, .. }) => assert_eq!(code, ErrorCode::ShuttingDown),
            other => panic!("expected shutting_down, got {other:?}"),
        }
        assert!(s.closed_within(WAIT).await);
    }
    assert!(
        stopping.await.unwrap(),
        "graceful shutdown finished once clients were told"
    );
}
