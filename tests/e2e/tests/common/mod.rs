//! Shared by the attack tests: raw joins with chosen keys and the checks on refusals.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use hearth_client::Signal;
use hearth_e2e::{Keys, TestServer};
use hearth_proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage, SessionId};
use std::time::Duration;

/// How long any single answer may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A raw socket that joined.
pub struct Joined {
    /// The socket.
    pub s: Signal,
    /// Our participant id.
    pub id: hearth_proto::ParticipantId,
    /// The resume token the server gave.
    pub resume_token: String,
}

/// Joins over a raw socket with the given keys; a refusal returns its code and the socket.
pub async fn try_join(
    server: &TestServer,
    session: &SessionId,
    host_key: Option<&str>,
    invite_key: Option<&str>,
    resume_token: Option<&str>,
) -> Result<Joined, (ErrorCode, Signal)> {
    let mut s = Signal::connect(&server.ws_url()).await.expect("connect");
    s.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: "Someone".into(),
        host_key: host_key.map(Into::into),
        invite_key: invite_key.map(Into::into),
        resume_token: resume_token.map(Into::into),
        resume: None,
    })
    .await
    .expect("send join");
    match s.recv(WAIT).await.expect("answer") {
        ServerMessage::Joined {
            participant_id,
            resume_token,
            ..
        } => Ok(Joined {
            s,
            id: participant_id,
            resume_token,
        }),
        ServerMessage::Error { code, .. } => Err((code, s)),
        other => panic!("unexpected {other:?}"),
    }
}

/// Joins expecting refusal with `code` and a closed socket.
pub async fn refused(
    server: &TestServer,
    session: &SessionId,
    host_key: Option<&str>,
    invite_key: Option<&str>,
    resume_token: Option<&str>,
    code: ErrorCode,
) {
    match try_join(server, session, host_key, invite_key, resume_token).await {
        Ok(_) => panic!("join was accepted; expected {code}"),
        Err((got, mut s)) => {
            assert_eq!(got, code);
            assert!(s.closed_within(WAIT).await, "socket closed after {code}");
        }
    }
}

/// The HTTP status of `GET path`.
pub async fn status(server: &TestServer, path: &str) -> u16 {
    server.request("GET", path, None).await.0
}

/// A fresh session.
pub async fn session(server: &TestServer) -> (SessionId, Keys) {
    server.create_session("attacks").await
}
