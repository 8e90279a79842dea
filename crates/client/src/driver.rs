//! The task that relays between the signaling socket and the peer connections.

use futures_util::{SinkExt, StreamExt};
use hearth_proto::{ClientMessage, IceCandidate, PcTarget, ServerMessage, decode_server, encode};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::PeerConnection;

use crate::signal::Signal;
use crate::state::{Shared, lock};

/// How long a closing socket waits for the server's close frame.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);

pub(crate) struct Driver {
    pub(crate) ws: Signal,
    /// Shared so that a new socket's driver takes over the queue when an old one is dropped
    /// (a reconnect): the peer connections keep sending into the same queue.
    pub(crate) outbox_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<ClientMessage>>>,
    /// Closes the socket with a close frame, as a browser does when its tab closes.
    pub(crate) close: Arc<tokio::sync::Notify>,
    pub(crate) ctx: Ctx,
}

pub(crate) struct Ctx {
    pub(crate) outbox: mpsc::Sender<ClientMessage>,
    pub(crate) state: Shared,
    /// `None` for a receive-only participant.
    pub(crate) publish: Option<Arc<dyn PeerConnection>>,
    pub(crate) subscribe: Arc<dyn PeerConnection>,
    pub(crate) publish_answer: Arc<Mutex<Option<oneshot::Sender<String>>>>,
}

/// Relays between the signaling socket and the peer connections; records what the server says.
pub(crate) async fn drive(driver: Driver) {
    let Driver {
        ws,
        outbox_rx,
        close,
        ctx: d,
    } = driver;
    let mut outbox_rx = outbox_rx.lock_owned().await;
    let (mut sink, mut stream) = ws.into_inner().split();
    let mut pending: HashMap<PcTarget, Vec<IceCandidate>> = HashMap::new();
    loop {
        tokio::select! {
            out = outbox_rx.recv() => {
                let Some(out) = out else { break };
                if sink.send(Message::Text(encode(&out).into())).await.is_err() {
                    break;
                }
            }
            () = close.notified() => {
                // What was queued goes first (a `leave`), as a browser flushes a socket's
                // buffer before its close frame: dropped, the server would see a lost socket
                // and hold the participant for a resume.
                while let Ok(out) = outbox_rx.try_recv() {
                    if sink.send(Message::Text(encode(&out).into())).await.is_err() {
                        break;
                    }
                }
                let _ = sink.send(Message::Close(None)).await;
                // The closing handshake, as a browser does it: read until the server's close
                // frame. A socket dropped with unread data goes out as a reset, which can
                // destroy our close frame before the server reads it.
                let _ = tokio::time::timeout(CLOSING_HANDSHAKE, async {
                    while let Some(Ok(frame)) = stream.next().await {
                        if matches!(frame, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
                break;
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                {
                    let mut s = lock(&d.state);
                    s.signal_messages += 1;
                    s.signal_bytes += text.len() as u64;
                }
                let Ok(message) = decode_server(&text) else { continue };
                handle(&d, message, &mut pending).await;
            }
        }
    }
    lock(&d.state).closed = true;
}

pub(crate) async fn add_candidate(pc: &dyn PeerConnection, c: IceCandidate) {
    if c.candidate.is_empty() {
        return;
    }
    let _ = pc
        .add_ice_candidate(RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: c.username_fragment,
            ..Default::default()
        })
        .await;
}

pub(crate) async fn handle(
    d: &Ctx,
    message: ServerMessage,
    pending: &mut HashMap<PcTarget, Vec<IceCandidate>>,
) {
    match message {
        ServerMessage::PublishAnswer { sdp } => {
            if let Some(tx) = d
                .publish_answer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                let _ = tx.send(sdp);
            }
            // Candidates that raced ahead of the answer are applied once it is set.
            let queued = pending.remove(&PcTarget::Publish).unwrap_or_default();
            let Some(publish) = d.publish.clone() else {
                return;
            };
            tokio::spawn(async move {
                for _ in 0..100 {
                    if publish.remote_description().await.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                for c in queued {
                    add_candidate(publish.as_ref(), c).await;
                }
            });
        }
        ServerMessage::SubscribeOffer { sdp } => {
            let sections = sdp.lines().filter(|l| l.starts_with("m=")).count();
            lock(&d.state).offer_sections = sections;
            let Ok(offer) = RTCSessionDescription::offer(sdp) else {
                return;
            };
            if d.subscribe.set_remote_description(offer).await.is_err() {
                return;
            }
            for c in pending.remove(&PcTarget::Subscribe).unwrap_or_default() {
                add_candidate(d.subscribe.as_ref(), c).await;
            }
            let Ok(answer) = d.subscribe.create_answer(None).await else {
                return;
            };
            let sdp = answer.sdp.clone();
            if d.subscribe.set_local_description(answer).await.is_err() {
                return;
            }
            let _ = d.outbox.send(ClientMessage::SubscribeAnswer { sdp }).await;
            lock(&d.state).offers_answered += 1;
        }
        ServerMessage::Candidate { target, candidate } => {
            let pc = match (target, &d.publish) {
                (PcTarget::Publish, Some(publish)) => publish,
                // A receive-only participant has nothing to apply a publish candidate to.
                (PcTarget::Publish, None) => return,
                (PcTarget::Subscribe, _) => &d.subscribe,
            };
            if pc.remote_description().await.is_some() {
                add_candidate(pc.as_ref(), candidate).await;
            } else {
                pending.entry(target).or_default().push(candidate);
            }
        }
        ServerMessage::ParticipantUpdated { participant }
            if lock(&d.state).participant_id.as_ref() == Some(&participant.id) =>
        {
            let mut s = lock(&d.state);
            s.me = Some(participant);
            s.forget_unheard();
        }
        ServerMessage::Chat { message } => lock(&d.state).chat.push(message),
        ServerMessage::SettingsUpdated { settings } => {
            let mut s = lock(&d.state);
            s.settings = Some(settings);
            s.forget_unheard();
        }
        ServerMessage::Audience { count } => {
            let mut s = lock(&d.state);
            s.audience = count;
            s.audience_updates += 1;
        }
        ServerMessage::WaitingUpdated { waiting } => lock(&d.state).waiting = waiting,
        ServerMessage::InviteRotated { invite_url } => lock(&d.state).invite_url = Some(invite_url),
        ServerMessage::MutedByHost { kind } => lock(&d.state).muted_by_host.push(kind),
        ServerMessage::RecordingUpdated { recording, error } => {
            let mut s = lock(&d.state);
            s.recording = recording;
            s.recording_errors.extend(error);
        }
        ServerMessage::ActiveSpeaker {
            participant_id,
            speaking,
        } => {
            let mut s = lock(&d.state);
            s.active_speaker = participant_id;
            s.speaking = speaking;
            s.speaker_updates += 1;
        }
        ServerMessage::Waiting { .. } => {}
        ServerMessage::ParticipantJoined { participant }
        | ServerMessage::ParticipantUpdated { participant } => {
            lock(&d.state).heard(participant);
        }
        ServerMessage::ParticipantLeft { participant_id } => {
            let mut s = lock(&d.state);
            s.participants.remove(&participant_id);
            s.heard_about.insert(participant_id.clone());
            s.left.push(participant_id);
        }
        ServerMessage::SimulcastLayers { track_id, active } => {
            // Pause or resume our layers as asked, like a browser's encodings[i].active.
            let mut s = lock(&d.state);
            if let Some(switches) = s.layer_switches.get(&track_id) {
                for (switch, on) in switches.iter().zip(&active) {
                    switch.store(*on, std::sync::atomic::Ordering::Relaxed);
                }
            }
            if s.layer_requests.len() < 1000 {
                s.layer_requests.push((track_id, active));
            }
        }
        ServerMessage::TrackPublished { track } => {
            lock(&d.state).tracks.insert(track.id.to_string(), track);
        }
        ServerMessage::TrackUnpublished { track_id, .. } => {
            let mut s = lock(&d.state);
            s.tracks.remove(track_id.as_str());
            s.unpublished.push(track_id.to_string());
        }
        ServerMessage::Error { code, message }
            if matches!(
                code,
                hearth_proto::ErrorCode::Forbidden | hearth_proto::ErrorCode::InvalidSdp
            ) && d
                .publish_answer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some() =>
        {
            // The refusal of a pending publish: fail it now instead of letting it time out.
            // Record the error first: failing the publish wakes its caller, which may look at
            // the errors at once.
            lock(&d.state).errors.push((code, message));
            d.publish_answer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
        ServerMessage::Error { code, message } => {
            lock(&d.state).errors.push((code, message));
        }
        ServerMessage::Joined { .. } | ServerMessage::Pong { .. } => {}
    }
}
