//! The permission matrix, over the real WebSocket: every role against every action in a stage
//! session. A refused action answers a stable error code and changes nothing; an allowed one
//! has its visible effect.

#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.

use hearth_client::Signal;
use hearth_e2e::media::TempDir;
use hearth_e2e::{Keys, TestServer};
use hearth_proto::{
    ClientMessage, ErrorCode, MediaKind, PROTOCOL_VERSION, ParticipantId, Role, ServerMessage,
    SessionId, SettingsChange,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A joined raw socket.
struct Raw {
    s: Signal,
    id: ParticipantId,
}

async fn join(
    server: &TestServer,
    session: &SessionId,
    name: &str,
    host_key: Option<&str>,
    invite_key: Option<&str>,
) -> Result<Raw, (ErrorCode, String)> {
    let mut s = Signal::connect(&server.ws_url()).await.expect("connect");
    s.send(&ClientMessage::Join {
        version: PROTOCOL_VERSION,
        session_id: session.clone(),
        name: name.into(),
        host_key: host_key.map(Into::into),
        invite_key: invite_key.map(Into::into),
        resume_token: None,
        resume: None,
    })
    .await
    .expect("send join");
    match s.recv(WAIT).await.expect("answer to join") {
        ServerMessage::Joined { participant_id, .. } => Ok(Raw {
            s,
            id: participant_id,
        }),
        ServerMessage::Error { code, message } => Err((code, message)),
        other => panic!("unexpected answer to join: {other:?}"),
    }
}

/// Reads until `pred` matches, or an error arrives (returned as Err).
async fn outcome(
    raw: &mut Raw,
    pred: impl Fn(&ServerMessage) -> bool,
) -> Result<ServerMessage, ErrorCode> {
    let m = raw
        .s
        .recv_until(WAIT, |m| {
            pred(m) || matches!(m, ServerMessage::Error { .. })
        })
        .await
        .expect("an outcome");
    match m {
        ServerMessage::Error { code, .. } => Err(code),
        m => Ok(m),
    }
}

struct Cast {
    server: TestServer,
    /// Where the server may record.
    _recordings: TempDir,
    session: SessionId,
    keys: Keys,
    host: Raw,
    cohost: Raw,
    speaker: Raw,
    attendee: Raw,
    victim: Raw,
}

async fn cast() -> Cast {
    let recordings = TempDir::new("hearth-matrix");
    let server = TestServer::start_with(hearth_server::ServerConfig {
        recordings_dir: Some(recordings.path().to_owned()),
        ..hearth_server::ServerConfig::default()
    })
    .await;
    let (session, keys) = server
        .create_session_with(serde_json::json!({"title": "matrix", "shape": "stage"}))
        .await;
    let mut host = join(&server, &session, "Host", Some(&keys.host), None)
        .await
        .unwrap();
    let cohost = join(&server, &session, "Co", None, Some(&keys.invite))
        .await
        .unwrap();
    let speaker = join(&server, &session, "Speaker", None, Some(&keys.invite))
        .await
        .unwrap();
    let attendee = join(&server, &session, "Attendee", None, Some(&keys.invite))
        .await
        .unwrap();
    let victim = join(&server, &session, "Victim", None, Some(&keys.invite))
        .await
        .unwrap();
    for (id, role) in [(&cohost.id, Role::Cohost), (&speaker.id, Role::Speaker)] {
        host.s
            .send(&ClientMessage::SetRole {
                participant_id: id.clone(),
                role,
            })
            .await
            .unwrap();
        let id = id.clone();
        outcome(&mut host, |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == id && participant.role == role))
            .await
            .expect("host sets up roles");
    }
    Cast {
        server,
        _recordings: recordings,
        session,
        keys,
        host,
        cohost,
        speaker,
        attendee,
        victim,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Publish,
    Chat,
    RaiseHand,
    MuteVictim,
    RemoveVictim,
    VictimToSpeaker,
    VictimToCohost,
    MakeHost,
    Lock,
    RotateInvite,
    AdmitNobody,
    Record,
    End,
}

const ACTS: [Act; 13] = [
    Act::Publish,
    Act::Chat,
    Act::RaiseHand,
    Act::MuteVictim,
    Act::RemoveVictim,
    Act::VictimToSpeaker,
    Act::VictimToCohost,
    Act::MakeHost,
    Act::Lock,
    Act::RotateInvite,
    Act::AdmitNobody,
    Act::Record,
    Act::End,
];

/// The documented table (docs/protocol.md, "Permissions"), written out by hand: what each role
/// may do in a stage session.
fn expected(role: Role, act: Act) -> bool {
    use Act::*;
    match role {
        Role::Host => !matches!(act, RaiseHand | MakeHost),
        Role::Cohost => !matches!(act, RaiseHand | MakeHost | VictimToCohost | End),
        Role::Speaker => matches!(act, Publish | Chat),
        Role::Attendee => matches!(act, Chat | RaiseHand),
    }
}

fn message(act: Act, victim: &ParticipantId) -> ClientMessage {
    match act {
        // An offer that sends but is unusable: allowed roles pass the permission check and fail on
        // the SDP.
        Act::Publish => ClientMessage::PublishOffer {
            // Sends video, but cannot be applied (no ICE or DTLS attributes).
            sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\n".into(),
            sources: Default::default(),
        },
        Act::Chat => ClientMessage::Chat {
            text: "hello".into(),
        },
        Act::RaiseHand => ClientMessage::RaiseHand { raised: true },
        Act::MuteVictim => ClientMessage::MuteParticipant {
            participant_id: victim.clone(),
            kind: MediaKind::Audio,
        },
        Act::RemoveVictim => ClientMessage::RemoveParticipant {
            participant_id: victim.clone(),
        },
        Act::VictimToSpeaker => ClientMessage::SetRole {
            participant_id: victim.clone(),
            role: Role::Speaker,
        },
        Act::VictimToCohost => ClientMessage::SetRole {
            participant_id: victim.clone(),
            role: Role::Cohost,
        },
        Act::MakeHost => ClientMessage::SetRole {
            participant_id: victim.clone(),
            role: Role::Host,
        },
        Act::Lock => ClientMessage::UpdateSettings {
            change: SettingsChange {
                locked: Some(true),
                ..SettingsChange::default()
            },
        },
        Act::RotateInvite => ClientMessage::RotateInvite,
        Act::AdmitNobody => ClientMessage::Admit {
            participant_id: ParticipantId::from_string("nobody"),
        },
        Act::Record => ClientMessage::StartRecording,
        Act::End => ClientMessage::EndSession,
    }
}

/// What the actor sees when the action succeeds.
fn success(
    act: Act,
    me: &ParticipantId,
    victim: &ParticipantId,
) -> Box<dyn Fn(&ServerMessage) -> bool> {
    let (me, victim) = (me.clone(), victim.clone());
    match act {
        Act::Publish => Box::new(|_| false), // success shows as invalid_sdp (an error) below
        Act::Chat => {
            Box::new(move |m| matches!(m, ServerMessage::Chat { message } if message.from == me))
        }
        Act::RaiseHand => Box::new(
            move |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == me && participant.hand_raised),
        ),
        Act::MuteVictim => Box::new(
            move |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == victim && participant.audio_muted),
        ),
        Act::RemoveVictim => Box::new(
            move |m| matches!(m, ServerMessage::ParticipantLeft { participant_id } if *participant_id == victim),
        ),
        Act::VictimToSpeaker => Box::new(
            move |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == victim && participant.role == Role::Speaker),
        ),
        Act::VictimToCohost => Box::new(
            move |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == victim && participant.role == Role::Cohost),
        ),
        Act::MakeHost => Box::new(|_| false),
        Act::Lock => Box::new(
            |m| matches!(m, ServerMessage::SettingsUpdated { settings } if settings.locked),
        ),
        Act::RotateInvite => Box::new(|m| matches!(m, ServerMessage::InviteRotated { .. })),
        Act::Record => Box::new(|m| {
            matches!(
                m,
                ServerMessage::RecordingUpdated {
                    recording: Some(_),
                    ..
                }
            )
        }),
        Act::AdmitNobody => Box::new(|_| false), // success shows as unknown_participant
        Act::End => Box::new(|_| false),         // success shows as session_ended
    }
}

/// The code an allowed action answers when its success is itself an error.
fn allowed_error(act: Act) -> Option<ErrorCode> {
    match act {
        Act::Publish => Some(ErrorCode::InvalidSdp),
        Act::AdmitNobody => Some(ErrorCode::UnknownParticipant),
        Act::End => Some(ErrorCode::SessionEnded),
        _ => None,
    }
}

/// Checks that nothing changed after a refused `act`, from the host's side and with new joins.
async fn assert_unchanged(c: &mut Cast, act: Act) {
    // The victim is still there, unmuted, an attendee; the session is open, unlocked, and its
    // invite still works.
    let mut probe = join(&c.server, &c.session, "Probe", None, Some(&c.keys.invite))
        .await
        .unwrap_or_else(|e| {
            panic!("after refused {act:?}, the invite link still lets people in: {e:?}")
        });
    let (participants, _) = c.server.occupancy(&c.session).await;
    assert_eq!(
        participants, 6,
        "after refused {act:?}: everyone still inside"
    );
    c.host
        .s
        .send(&ClientMessage::Ping { nonce: 7 })
        .await
        .unwrap();
    let victim = c.victim.id.clone();
    // The host's latest view of the victim must be the original one.
    let mut seen_change = false;
    loop {
        match c.host.s.recv(WAIT).await.unwrap() {
            ServerMessage::Pong { nonce: 7 } => break,
            ServerMessage::ParticipantUpdated { participant } if participant.id == victim => {
                seen_change |= participant.audio_muted || participant.role != Role::Attendee;
            }
            ServerMessage::SettingsUpdated { .. }
            | ServerMessage::InviteRotated { .. }
            | ServerMessage::RecordingUpdated { .. } => seen_change = true,
            _ => {}
        }
    }
    assert!(
        !seen_change,
        "a refused {act:?} changed something the host saw"
    );
    probe.s.send(&ClientMessage::Leave).await.unwrap();
    let _ = probe.s.closed_within(WAIT).await;
}

async fn check(role: Role, act: Act) {
    let mut c = cast().await;
    let victim = c.victim.id.clone();
    let actor = match role {
        Role::Host => &mut c.host,
        Role::Cohost => &mut c.cohost,
        Role::Speaker => &mut c.speaker,
        Role::Attendee => &mut c.attendee,
    };
    let me = actor.id.clone();
    actor.s.send(&message(act, &victim)).await.unwrap();
    let result = outcome(actor, success(act, &me, &victim)).await;
    let ok = match (result, allowed_error(act)) {
        (Ok(_), _) => true,
        (Err(code), Some(expected)) if code == expected => true,
        (Err(ErrorCode::Forbidden), _) => false,
        (Err(code), _) => panic!("{role:?} {act:?}: unexpected error {code}"),
    };
    assert_eq!(ok, expected(role, act), "{role:?} doing {act:?}");
    if !ok {
        assert_unchanged(&mut c, act).await;
    }
    c.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_action() {
    for role in [Role::Host, Role::Cohost, Role::Speaker, Role::Attendee] {
        for act in ACTS {
            check(role, act).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohosts_cannot_act_on_hosts_or_each_other() {
    let mut c = cast().await;
    let host = c.host.id.clone();
    for target in [host.clone(), c.cohost.id.clone()] {
        for message in [
            ClientMessage::MuteParticipant {
                participant_id: target.clone(),
                kind: MediaKind::Video,
            },
            ClientMessage::RemoveParticipant {
                participant_id: target.clone(),
            },
            ClientMessage::SetRole {
                participant_id: target.clone(),
                role: Role::Attendee,
            },
        ] {
            c.cohost.s.send(&message).await.unwrap();
            assert_eq!(
                outcome(&mut c.cohost, |_| false).await.unwrap_err(),
                ErrorCode::Forbidden,
                "{message:?}"
            );
        }
    }
    // Acting on someone who is not there is a different, stable refusal.
    c.host
        .s
        .send(&ClientMessage::RemoveParticipant {
            participant_id: ParticipantId::from_string("ghost"),
        })
        .await
        .unwrap();
    assert_eq!(
        outcome(&mut c.host, |_| false).await.unwrap_err(),
        ErrorCode::UnknownParticipant
    );
    assert_eq!(c.server.occupancy(&c.session).await.0, 5);
}
