//! One task per WebSocket: the join handshake (links, waiting room), then a loop that relays
//! between the client, its room and its two peer connections. All of a participant's state
//! lives in this task.

mod joined;
mod resume;

pub(crate) use resume::Resumables;
use resume::{Handoff, Registration};

use crate::AppState;
use crate::room::{JoinOutcome, JoinRequest, Joined, RoomCommand, RoomEvent};
use crate::sessions::SessionHandle;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use hearth_core::TokenBucket;
use hearth_media::{MediaEvent, Publisher, Subscriber};
use hearth_proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, ParticipantId, ServerMessage, decode_client, encode,
};
use hearth_store::secrets;
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
/// Messages a client may send in a burst, and per second after it. Joining with trickle ICE
/// takes a few dozen messages at once; a person clicking takes a few a second.
const MESSAGE_BURST: u32 = 60;
const MESSAGES_PER_SECOND: f64 = 30.0;
/// Messages refused for rate before the connection is closed as a flood.
const FLOOD_LIMIT: u32 = 200;

/// How a connection ended: for the log, and to decide whether its participant waits for a
/// resume.
#[derive(Debug)]
pub(crate) enum End {
    /// The client left, or closed the socket with a close frame (the page went away).
    Closed,
    /// The socket broke without a close frame, or could not be written: the network, not the
    /// person, ended it.
    Lost,
    /// We sent a fatal error.
    Fatal(ErrorCode),
    /// A newer socket of the same page asked for the participant.
    HandedOff(Handoff),
}

pub(crate) struct Conn {
    socket: WebSocket,
    state: AppState,
    /// Base URL for links, as this client reached the server.
    base_url: String,
    /// Last time anything arrived from the client, for the idle timeout.
    last_heard: Instant,
    /// Rate limit on every message.
    limiter: TokenBucket,
    /// Messages refused by the limiter so far.
    refused: u32,
    /// When `rate_limited` was last reported, so a flood does not get a flood of errors back.
    last_rate_error: Option<Instant>,
}

/// Serves one WebSocket until it closes. Everything logged on its behalf carries the peer
/// address and, once known, the session and participant ids.
pub async fn serve(socket: WebSocket, state: AppState, peer: SocketAddr, base_url: String) {
    let span = tracing::info_span!(
        "ws",
        %peer,
        session_id = tracing::field::Empty,
        participant_id = tracing::field::Empty
    );
    serve_inner(socket, state, base_url).instrument(span).await;
}

async fn serve_inner(socket: WebSocket, state: AppState, base_url: String) {
    let mut conn = Conn {
        socket,
        state,
        base_url,
        last_heard: Instant::now(),
        limiter: TokenBucket::new(
            MESSAGE_BURST,
            MESSAGES_PER_SECOND,
            std::time::Instant::now(),
        ),
        refused: 0,
        last_rate_error: None,
    };
    tracing::debug!("websocket connected");
    let end = match conn.await_join().await {
        Ok(mut participant) => match conn.run(&mut participant).await {
            End::HandedOff(Handoff(to)) => {
                let _ = conn
                    .error(
                        ErrorCode::Replaced,
                        "you continued on a newer connection; this one is closed",
                    )
                    .await;
                if let Err(mut participant) = to.send(participant) {
                    participant.leave().await;
                }
                End::Fatal(ErrorCode::Replaced)
            }
            end if resume::parks(&end)
                && !participant.left
                && !conn.state.config().resume_grace.is_zero() =>
            {
                let grace = conn.state.config().resume_grace;
                resume::park(participant, grace, conn.state.shutdown_signal());
                end
            }
            end => {
                participant.leave().await;
                end
            }
        },
        Err(end) => end,
    };
    match end {
        End::Closed => tracing::debug!("websocket closed"),
        End::Lost => tracing::debug!("websocket lost"),
        End::Fatal(code) => tracing::debug!(%code, "websocket closed after a fatal error"),
        End::HandedOff(_) => {}
    }
    let _ = conn.socket.send(Message::Close(None)).await;
}

/// A joined participant: everything that must be torn down when the socket ends.
pub(crate) struct Participant {
    id: ParticipantId,
    session: Arc<SessionHandle>,
    room_events: mpsc::Receiver<RoomEvent>,
    media_events: mpsc::Receiver<MediaEvent>,
    publisher: Publisher,
    subscriber: Subscriber,
    /// Limits chat separately: a person types a few lines a minute.
    chat_limiter: TokenBucket,
    /// A `subscribe_offer` was sent and its answer has not arrived.
    offer_outstanding: bool,
    /// The set of forwarded tracks changed since the last offer.
    needs_offer: bool,
    /// At least one offer was sent (so removing every track still needs a new offer).
    offered_once: bool,
    /// The client sent `leave`.
    left: bool,
    /// Requests from a newer socket of the same page to take this participant over.
    handoff: mpsc::Receiver<Handoff>,
    /// Keeps the participant resumable while it exists.
    _registration: Registration,
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

/// A resume token from a client is used only if it looks like one we issue.
fn valid_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Conn {
    /// Sends one message; `false` if the client is gone or too slow to take it.
    pub(crate) async fn send(&mut self, message: &ServerMessage) -> bool {
        let text = encode(message);
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into()))).await,
            Ok(Ok(()))
        )
    }

    /// Sends, mapping failure to the end of the connection.
    pub(crate) async fn reply(&mut self, message: &ServerMessage) -> Result<(), End> {
        if self.send(message).await {
            Ok(())
        } else {
            Err(End::Lost)
        }
    }

    /// Reports an error to the client and logs it once. Returns `Err` if it is fatal (the caller
    /// then ends the connection).
    pub(crate) async fn error(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Result<(), End> {
        let message = message.into();
        self.state.metrics().websocket_error(code);
        if code == ErrorCode::Internal {
            tracing::error!(%code, %message, "signaling error");
        } else {
            tracing::info!(%code, %message, "refused client message");
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

    /// Turns a frame into message text. `Ok(None)` for frames that carry no message (pings,
    /// pongs) and for messages dropped by the rate limit.
    pub(crate) async fn handle_frame(
        &mut self,
        frame: Option<Result<Message, axum::Error>>,
    ) -> Result<Option<String>, End> {
        self.last_heard = Instant::now();
        match frame {
            Some(Ok(Message::Close(_))) => Err(End::Closed),
            None | Some(Err(_)) => Err(End::Lost),
            Some(Ok(Message::Text(text))) => {
                if self.limiter.take(std::time::Instant::now()) {
                    return Ok(Some(text.to_string()));
                }
                self.refused += 1;
                if self.refused > FLOOD_LIMIT {
                    self.error(ErrorCode::RateLimited, "too many messages; disconnected")
                        .await?;
                    return Err(End::Fatal(ErrorCode::RateLimited));
                }
                let quiet = self
                    .last_rate_error
                    .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
                if !quiet {
                    self.last_rate_error = Some(Instant::now());
                    self.error(ErrorCode::RateLimited, "too many messages; slow down")
                        .await?;
                }
                Ok(None)
            }
            Some(Ok(Message::Binary(_))) => {
                self.error(
                    ErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol",
                )
                .await?;
                Ok(None)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        }
    }

    /// Waits for a valid `join` (and, if the waiting room holds the client, for admission),
    /// answering everything else with an error, until the join deadline.
    async fn await_join(&mut self) -> Result<Participant, End> {
        let deadline = Instant::now() + self.state.config().join_timeout;
        let mut shutdown = self.state.shutdown_signal();
        loop {
            let frame = tokio::select! {
                frame = self.socket.recv() => frame,
                () = tokio::time::sleep_until(deadline) => {
                    self.error(ErrorCode::JoinTimeout, "no join within the time allowed").await?;
                    return Err(End::Fatal(ErrorCode::JoinTimeout));
                }
                () = wait_shutdown(&mut shutdown) => {
                    self.error(ErrorCode::ShuttingDown, "the server is shutting down").await?;
                    return Err(End::Fatal(ErrorCode::ShuttingDown));
                }
            };
            let Some(text) = self.handle_frame(frame).await? else {
                continue;
            };
            match decode_client(&text) {
                Err(e) => self.error(e.code, e.message).await?,
                Ok(ClientMessage::Ping { nonce }) => {
                    self.reply(&ServerMessage::Pong { nonce }).await?
                }
                Ok(ClientMessage::Join {
                    version,
                    session_id,
                    name,
                    host_key,
                    invite_key,
                    resume_token,
                    resume,
                }) => {
                    if version != PROTOCOL_VERSION {
                        self.error(
                            ErrorCode::UnsupportedVersion,
                            format!("this server speaks protocol version {PROTOCOL_VERSION}; reload the page"),
                        )
                        .await?;
                    }
                    let (session, grant) = match self.state.sessions().authorize(
                        &session_id,
                        host_key.as_deref(),
                        invite_key.as_deref(),
                    ) {
                        Ok(ok) => ok,
                        Err(e) => {
                            self.error(e.code(), e.message()).await?;
                            return Err(End::Fatal(e.code()));
                        }
                    };
                    let presented = resume_token.filter(|t| valid_token(t));
                    if let (Some(id), Some(token)) = (&resume, &presented)
                        && let Some(participant) = self.resume(&session_id, id, token).await?
                    {
                        return Ok(participant);
                    }
                    let token = presented.unwrap_or_else(secrets::new_secret);
                    let id = ParticipantId::random();
                    let (events, room_events) = mpsc::channel(crate::room::PARTICIPANT_QUEUE);
                    let request = JoinRequest {
                        id: id.clone(),
                        name,
                        role: grant.role,
                        credential_hash: secrets::hash_secret(&token),
                        invite_hash: grant.invite_hash,
                        host_key: grant.host_key,
                        base_url: self.base_url.clone(),
                        events,
                    };
                    let (reply, answer) = oneshot::channel();
                    if session
                        .room
                        .send(RoomCommand::Join { request, reply })
                        .await
                        .is_err()
                    {
                        self.error(ErrorCode::SessionEnded, "this session has ended")
                            .await?;
                        return Err(End::Fatal(ErrorCode::SessionEnded));
                    }
                    let outcome = answer.await.unwrap_or_else(|_| {
                        JoinOutcome::Refused((
                            ErrorCode::SessionEnded,
                            "this session has ended".into(),
                        ))
                    });
                    let joined = match outcome {
                        JoinOutcome::Joined(joined) => joined,
                        JoinOutcome::Refused((code, message)) => {
                            self.error(code, message).await?;
                            continue;
                        }
                        JoinOutcome::Waiting(info) => {
                            self.reply(&ServerMessage::Waiting { session: info })
                                .await?;
                            match self.await_admission(&session, &id, room_events).await? {
                                Some((joined, room_events)) => {
                                    return self
                                        .enter(session, id, token, joined, room_events)
                                        .await;
                                }
                                None => return Err(End::Closed),
                            }
                        }
                    };
                    return self.enter(session, id, token, joined, room_events).await;
                }
                Ok(_) => self.error(ErrorCode::NotJoined, "send join first").await?,
            }
        }
    }

    /// In the waiting room: only `ping` and `leave` mean anything until a host decides.
    async fn await_admission(
        &mut self,
        session: &Arc<SessionHandle>,
        id: &ParticipantId,
        mut room_events: mpsc::Receiver<RoomEvent>,
    ) -> Result<Option<(Box<Joined>, mpsc::Receiver<RoomEvent>)>, End> {
        let leave = |session: &Arc<SessionHandle>| {
            let room = session.room.clone();
            let id = id.clone();
            async move {
                let _ = room.send(RoomCommand::Leave { id }).await;
            }
        };
        let mut shutdown = self.state.shutdown_signal();
        let ping_every = self.state.config().ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        loop {
            tokio::select! {
                frame = self.socket.recv() => {
                    let text = match self.handle_frame(frame).await {
                        Ok(Some(text)) => text,
                        Ok(None) => continue,
                        Err(end) => {
                            leave(session).await;
                            return Err(end);
                        }
                    };
                    let result = match decode_client(&text) {
                        Ok(ClientMessage::Ping { nonce }) => self.reply(&ServerMessage::Pong { nonce }).await,
                        Ok(ClientMessage::Leave) => Err(End::Closed),
                        Ok(_) => self.error(ErrorCode::NotJoined, "waiting for a host to let you in").await,
                        Err(e) => self.error(e.code, e.message).await,
                    };
                    if let Err(end) = result {
                        leave(session).await;
                        return Err(end);
                    }
                }
                event = room_events.recv() => match event {
                    Some(RoomEvent::Admitted(joined)) => return Ok(Some((joined, room_events))),
                    Some(RoomEvent::Close((code, message))) => {
                        self.error(code, message).await?;
                        return Err(End::Fatal(code));
                    }
                    Some(_) => {}
                    None => return Ok(None),
                },
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > self.state.config().idle_timeout
                        || self.socket.send(Message::Ping(Vec::new().into())).await.is_err()
                    {
                        leave(session).await;
                        return Err(End::Closed);
                    }
                }
                () = wait_shutdown(&mut shutdown) => {
                    leave(session).await;
                    self.error(ErrorCode::ShuttingDown, "the server is shutting down").await?;
                }
            }
        }
    }

    /// Opens media for a participant the room accepted and sends `joined`.
    async fn enter(
        &mut self,
        session: Arc<SessionHandle>,
        id: ParticipantId,
        resume_token: String,
        joined: Box<Joined>,
        room_events: mpsc::Receiver<RoomEvent>,
    ) -> Result<Participant, End> {
        let span = tracing::Span::current();
        span.record("session_id", tracing::field::display(&session.info.id));
        span.record("participant_id", tracing::field::display(&id));
        let (media_tx, media_events) = mpsc::channel(MEDIA_QUEUE);
        let publisher = Publisher::new(self.state.peers(), id.clone(), media_tx.clone()).await;
        let subscriber = Subscriber::new(self.state.peers(), media_tx).await;
        let (publisher, subscriber) = match (publisher, subscriber) {
            (Ok(p), Ok(s)) => (p, s),
            (Err(e), _) | (_, Err(e)) => {
                let _ = session.room.send(RoomCommand::Leave { id }).await;
                self.error(ErrorCode::Internal, format!("could not open media: {e}"))
                    .await?;
                return Err(End::Fatal(ErrorCode::Internal));
            }
        };
        let (registration, handoff) = self.state.resumables().register(
            &id,
            &session.info.id,
            secrets::hash_secret(&resume_token),
        );
        let mut participant = Participant {
            handoff,
            _registration: registration,
            id: id.clone(),
            session,
            room_events,
            media_events,
            publisher,
            subscriber,
            chat_limiter: TokenBucket::new(5, 0.5, std::time::Instant::now()),
            offer_outstanding: false,
            needs_offer: false,
            offered_once: false,
            left: false,
        };
        let joined = *joined;
        let welcome = ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            participant_id: id,
            role: joined.role,
            session: joined.session,
            participants: joined.participants,
            audience: joined.audience,
            tracks: joined.tracks,
            settings: joined.settings,
            chat: joined.chat,
            resume_token,
            invite_url: joined.invite_url,
            waiting: joined.waiting,
            recording: joined.recording,
            resumed: false,
        };
        if !self.send(&welcome).await {
            participant.leave().await;
            return Err(End::Closed);
        }
        Ok(participant)
    }
}

/// Resolves once the server starts shutting down (never, if the signal is gone).
pub(crate) async fn wait_shutdown(signal: &mut tokio::sync::watch::Receiver<bool>) {
    if signal.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
