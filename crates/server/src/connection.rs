//! One task per WebSocket: the join handshake, then a loop that relays between the client, its
//! room and its two peer connections. All of a participant's state lives in this task.

use crate::AppState;
use crate::room::{RoomCommand, RoomEvent};
use crate::sessions::SessionHandle;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use hearth_media::{MediaEvent, Publisher, Subscriber};
use hearth_proto::{
    ClientMessage, ErrorCode, MAX_NAME_CHARS, PROTOCOL_VERSION, ParticipantId, PcTarget, Role,
    ServerMessage, decode_client, encode,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

/// A client that cannot take a frame within this long is treated as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Media events (candidates, tracks) queued before the webrtc side drops candidates.
const MEDIA_QUEUE: usize = 256;

/// How a connection ended, for the log.
#[derive(Debug)]
enum End {
    /// The client left or closed the socket.
    Closed,
    /// We sent a fatal error.
    Fatal(ErrorCode),
}

struct Conn {
    socket: WebSocket,
    state: AppState,
    /// Last time anything arrived from the client, for the idle timeout.
    last_heard: Instant,
}

/// Serves one WebSocket until it closes. Everything logged on its behalf carries the peer
/// address and, once known, the session and participant ids.
pub async fn serve(socket: WebSocket, state: AppState, peer: SocketAddr) {
    let span = tracing::info_span!(
        "ws",
        %peer,
        session_id = tracing::field::Empty,
        participant_id = tracing::field::Empty
    );
    serve_inner(socket, state).instrument(span).await;
}

async fn serve_inner(socket: WebSocket, state: AppState) {
    let mut conn = Conn {
        socket,
        state,
        last_heard: Instant::now(),
    };
    tracing::debug!("websocket connected");
    let end = match conn.await_join().await {
        Ok(mut participant) => {
            let end = conn.run(&mut participant).await;
            participant.leave().await;
            end
        }
        Err(end) => end,
    };
    match end {
        End::Closed => tracing::debug!("websocket closed"),
        End::Fatal(code) => tracing::debug!(%code, "websocket closed after a fatal error"),
    }
    let _ = conn.socket.send(Message::Close(None)).await;
}

/// A joined participant: everything that must be torn down when the socket ends.
struct Participant {
    id: ParticipantId,
    session: Arc<SessionHandle>,
    room_events: mpsc::Receiver<RoomEvent>,
    media_events: mpsc::Receiver<MediaEvent>,
    publisher: Publisher,
    subscriber: Subscriber,
    /// A `subscribe_offer` was sent and its answer has not arrived.
    offer_outstanding: bool,
    /// The set of forwarded tracks changed since the last offer.
    needs_offer: bool,
    /// At least one offer was sent (so removing every track still needs a new offer).
    offered_once: bool,
    /// The client sent `leave`.
    left: bool,
}

impl Participant {
    async fn leave(&mut self) {
        let _ = self
            .session
            .room
            .send(RoomCommand::Leave {
                id: self.id.clone(),
            })
            .await;
        self.subscriber.close().await;
        self.publisher.close().await;
    }
}

impl Conn {
    /// Sends one message; `false` if the client is gone or too slow to take it.
    async fn send(&mut self, message: &ServerMessage) -> bool {
        let text = encode(message);
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await,
            Ok(Ok(()))
        )
    }

    /// Reports an error to the client and logs it once. Returns `Err` if it is fatal (the caller
    /// then ends the connection).
    async fn error(
        &mut self,
        participant: Option<&ParticipantId>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Result<(), End> {
        let message = message.into();
        // The span carries peer, session and participant; `joined` says at which stage.
        let joined = participant.is_some();
        if code == ErrorCode::Internal {
            tracing::error!(%code, %message, joined, "signaling error");
        } else {
            tracing::info!(%code, %message, joined, "refused client message");
        }
        let sent = self.send(&ServerMessage::error(code, message)).await;
        if code.is_fatal() {
            let _ = self
                .socket
                .send(Message::Close(Some(CloseFrame {
                    code: if code == ErrorCode::Internal {
                        1011
                    } else {
                        1008
                    },
                    reason: code.as_str().into(),
                })))
                .await;
            return Err(End::Fatal(code));
        }
        if sent { Ok(()) } else { Err(End::Closed) }
    }

    /// Reads the next text frame. `Ok(None)` for frames that carry no message (pings, pongs).
    async fn handle_frame(
        &mut self,
        frame: Option<Result<Message, axum::Error>>,
        participant: Option<&ParticipantId>,
    ) -> Result<Option<String>, End> {
        self.last_heard = Instant::now();
        match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(End::Closed),
            Some(Ok(Message::Text(text))) => Ok(Some(text.to_string())),
            Some(Ok(Message::Binary(_))) => {
                self.error(
                    participant,
                    ErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol",
                )
                .await?;
                Ok(None)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        }
    }

    /// Waits for a valid `join`, answering everything else with an error, until the join deadline.
    async fn await_join(&mut self) -> Result<Participant, End> {
        let deadline = Instant::now() + self.state.config().join_timeout;
        let mut shutdown = self.state.shutdown_signal();
        loop {
            let frame = tokio::select! {
                frame = self.socket.recv() => frame,
                () = tokio::time::sleep_until(deadline) => {
                    self.error(None, ErrorCode::JoinTimeout, "no join within the time allowed").await?;
                    return Err(End::Fatal(ErrorCode::JoinTimeout));
                }
                () = wait_shutdown(&mut shutdown) => {
                    self.error(None, ErrorCode::ShuttingDown, "the server is shutting down").await?;
                    return Err(End::Fatal(ErrorCode::ShuttingDown));
                }
            };
            let Some(text) = self.handle_frame(frame, None).await? else {
                continue;
            };
            match decode_client(&text) {
                Err(e) => self.error(None, e.code, e.message).await?,
                Ok(ClientMessage::Ping { nonce }) => {
                    if !self.send(&ServerMessage::Pong { nonce }).await {
                        return Err(End::Closed);
                    }
                }
                Ok(ClientMessage::Join {
                    version,
                    session_id,
                    name,
                    host_key,
                }) => {
                    if version != PROTOCOL_VERSION {
                        self.error(
                            None,
                            ErrorCode::UnsupportedVersion,
                            format!("this server speaks protocol version {PROTOCOL_VERSION}; reload the page"),
                        )
                        .await?;
                    }
                    let Some(session) = self.state.sessions().get(&session_id) else {
                        self.error(
                            None,
                            ErrorCode::UnknownSession,
                            "this session does not exist or has ended",
                        )
                        .await?;
                        continue;
                    };
                    let role = match host_key {
                        None => Role::Attendee,
                        Some(key) if session.is_host_key(&key) => Role::Host,
                        Some(_) => {
                            self.error(
                                None,
                                ErrorCode::BadMessage,
                                "the host key in this link is not valid",
                            )
                            .await?;
                            continue;
                        }
                    };
                    match self.join(session, name, role).await? {
                        Some(participant) => return Ok(participant),
                        None => continue,
                    }
                }
                Ok(_) => {
                    self.error(None, ErrorCode::NotJoined, "send join first")
                        .await?;
                }
            }
        }
    }

    /// Creates the peer connections and enters the room. `Ok(None)` when the room refused the
    /// join for a reason the client can fix (its name).
    async fn join(
        &mut self,
        session: Arc<SessionHandle>,
        name: String,
        role: Role,
    ) -> Result<Option<Participant>, End> {
        let id = ParticipantId::random();
        let (media_tx, media_events) = mpsc::channel(MEDIA_QUEUE);
        let publisher = Publisher::new(self.state.peers(), id.clone(), media_tx.clone()).await;
        let subscriber = Subscriber::new(self.state.peers(), media_tx).await;
        let (publisher, subscriber) = match (publisher, subscriber) {
            (Ok(p), Ok(s)) => (p, s),
            (Err(e), _) | (_, Err(e)) => {
                self.error(
                    None,
                    ErrorCode::Internal,
                    format!("could not open media: {e}"),
                )
                .await?;
                return Err(End::Fatal(ErrorCode::Internal));
            }
        };
        let (events_tx, room_events) = mpsc::channel(crate::room::PARTICIPANT_QUEUE);
        let (reply, answer) = oneshot::channel();
        let sent = session
            .room
            .send(RoomCommand::Join {
                id: id.clone(),
                name,
                role,
                events: events_tx,
                reply,
            })
            .await;
        let joined = match (sent, answer.await) {
            (Ok(()), Ok(Ok(joined))) => joined,
            (Ok(()), Ok(Err(hearth_core::JoinError::InvalidName))) => {
                self.error(
                    None,
                    ErrorCode::BadMessage,
                    format!("name must be 1 to {MAX_NAME_CHARS} characters"),
                )
                .await?;
                return Ok(None);
            }
            _ => {
                self.error(None, ErrorCode::Internal, "room unavailable")
                    .await?;
                return Err(End::Fatal(ErrorCode::Internal));
            }
        };
        let span = tracing::Span::current();
        span.record("session_id", tracing::field::display(&session.info.id));
        span.record("participant_id", tracing::field::display(&id));
        let mut participant = Participant {
            id: id.clone(),
            session,
            room_events,
            media_events,
            publisher,
            subscriber,
            offer_outstanding: false,
            needs_offer: false,
            offered_once: false,
            left: false,
        };
        let welcome = ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            participant_id: id,
            role,
            session: joined.session,
            participants: joined.participants,
            tracks: joined.tracks,
        };
        if !self.send(&welcome).await {
            participant.leave().await;
            return Err(End::Closed);
        }
        Ok(Some(participant))
    }

    /// The joined participant's loop.
    async fn run(&mut self, p: &mut Participant) -> End {
        match self.run_inner(p).await {
            Ok(()) => End::Closed,
            Err(end) => end,
        }
    }

    async fn run_inner(&mut self, p: &mut Participant) -> Result<(), End> {
        let mut shutdown = self.state.shutdown_signal();
        let ping_every = self.state.config().ping_interval;
        let idle_after = self.state.config().idle_timeout;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut idle_check = tokio::time::interval(Duration::from_millis(500).min(idle_after));
        while !p.left {
            tokio::select! {
                frame = self.socket.recv() => {
                    if let Some(text) = self.handle_frame(frame, Some(&p.id)).await? {
                        self.on_client_text(p, &text).await?;
                    }
                }
                event = p.room_events.recv() => {
                    let Some(event) = event else {
                        self.error(Some(&p.id), ErrorCode::TooSlow, "this connection fell behind the session").await?;
                        return Ok(());
                    };
                    self.on_room_event(p, event).await?;
                    // Fold a burst (e.g. everything already published, at join) into one offer.
                    while let Ok(event) = p.room_events.try_recv() {
                        self.on_room_event(p, event).await?;
                    }
                }
                Some(event) = p.media_events.recv() => self.on_media_event(p, event).await?,
                _ = ping.tick() => {
                    if self.socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return Err(End::Closed);
                    }
                }
                _ = idle_check.tick() => {
                    if self.last_heard.elapsed() > idle_after {
                        self.error(Some(&p.id), ErrorCode::IdleTimeout, "nothing received for too long").await?;
                    }
                }
                () = wait_shutdown(&mut shutdown) => {
                    self.error(Some(&p.id), ErrorCode::ShuttingDown, "the server is shutting down").await?;
                }
            }
            self.maybe_offer(p).await?;
        }
        Ok(())
    }

    async fn on_client_text(&mut self, p: &mut Participant, text: &str) -> Result<(), End> {
        let message = match decode_client(text) {
            Ok(m) => m,
            Err(e) => return self.error(Some(&p.id), e.code, e.message).await,
        };
        match message {
            ClientMessage::Join { .. } => {
                self.error(
                    Some(&p.id),
                    ErrorCode::AlreadyJoined,
                    "this socket already joined",
                )
                .await
            }
            ClientMessage::Ping { nonce } => {
                if self.send(&ServerMessage::Pong { nonce }).await {
                    Ok(())
                } else {
                    Err(End::Closed)
                }
            }
            ClientMessage::PublishOffer { sdp } => match p.publisher.handle_offer(sdp).await {
                Ok(sdp) => {
                    if self.send(&ServerMessage::PublishAnswer { sdp }).await {
                        Ok(())
                    } else {
                        Err(End::Closed)
                    }
                }
                Err(e) => {
                    self.error(Some(&p.id), ErrorCode::InvalidSdp, e.to_string())
                        .await
                }
            },
            ClientMessage::SubscribeAnswer { sdp } => {
                if !p.offer_outstanding {
                    return self
                        .error(
                            Some(&p.id),
                            ErrorCode::UnexpectedAnswer,
                            "no subscribe_offer is waiting for an answer",
                        )
                        .await;
                }
                p.offer_outstanding = false;
                if let Err(e) = p.subscriber.handle_answer(sdp).await {
                    // Offer again so the client gets another chance with a fresh offer.
                    p.needs_offer = true;
                    return self
                        .error(Some(&p.id), ErrorCode::InvalidSdp, e.to_string())
                        .await;
                }
                Ok(())
            }
            ClientMessage::Candidate { target, candidate } => {
                let result = match target {
                    PcTarget::Publish => p.publisher.add_candidate(candidate).await,
                    PcTarget::Subscribe => p.subscriber.add_candidate(candidate).await,
                };
                match result {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        self.error(Some(&p.id), ErrorCode::InvalidCandidate, e.to_string())
                            .await
                    }
                }
            }
            ClientMessage::Mute { kind, muted } => {
                let _ = p
                    .session
                    .room
                    .send(RoomCommand::Mute {
                        id: p.id.clone(),
                        kind,
                        muted,
                    })
                    .await;
                Ok(())
            }
            ClientMessage::Leave => {
                p.left = true;
                Ok(())
            }
        }
    }

    async fn on_room_event(&mut self, p: &mut Participant, event: RoomEvent) -> Result<(), End> {
        match event {
            RoomEvent::Message(message) => {
                if !self.send(&message).await {
                    return Err(End::Closed);
                }
            }
            RoomEvent::Subscribe(track) => {
                let id = track.id().clone();
                match p.subscriber.add_track(track).await {
                    Ok(()) => p.needs_offer = true,
                    Err(e) => {
                        tracing::warn!(participant_id = %p.id, track_id = %id, error = %e, "cannot forward track");
                    }
                }
            }
            RoomEvent::Unsubscribe(id) => {
                if p.subscriber.remove_track(&id).await {
                    p.needs_offer = true;
                }
            }
        }
        Ok(())
    }

    async fn on_media_event(&mut self, p: &mut Participant, event: MediaEvent) -> Result<(), End> {
        match event {
            MediaEvent::Candidate { target, candidate } => {
                if !self
                    .send(&ServerMessage::Candidate { target, candidate })
                    .await
                {
                    return Err(End::Closed);
                }
            }
            MediaEvent::TrackPublished(track) => {
                let _ = p
                    .session
                    .room
                    .send(RoomCommand::TrackPublished { track })
                    .await;
            }
            MediaEvent::TrackEnded(id) => {
                let _ = p.session.room.send(RoomCommand::TrackEnded { id }).await;
            }
            MediaEvent::State {
                target,
                connected,
                failed,
            } => {
                tracing::debug!(participant_id = %p.id, ?target, connected, failed, "media connection state");
            }
        }
        Ok(())
    }

    /// Sends a new subscribe offer if the forwarded tracks changed and no offer is outstanding.
    async fn maybe_offer(&mut self, p: &mut Participant) -> Result<(), End> {
        if !p.needs_offer || p.offer_outstanding {
            return Ok(());
        }
        if p.subscriber.track_count() == 0 && !p.offered_once {
            p.needs_offer = false;
            return Ok(());
        }
        p.needs_offer = false;
        match p.subscriber.create_offer().await {
            Ok(sdp) => {
                p.offer_outstanding = true;
                p.offered_once = true;
                if self.send(&ServerMessage::SubscribeOffer { sdp }).await {
                    Ok(())
                } else {
                    Err(End::Closed)
                }
            }
            Err(e) => {
                self.error(
                    Some(&p.id),
                    ErrorCode::Internal,
                    format!("subscribe offer: {e}"),
                )
                .await
            }
        }
    }
}

/// Resolves once the server starts shutting down (never, if the signal is gone).
async fn wait_shutdown(signal: &mut tokio::sync::watch::Receiver<bool>) {
    if signal.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
