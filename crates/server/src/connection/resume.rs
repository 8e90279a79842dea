//! Resuming a participant on a new WebSocket. A socket lost without a goodbye (a Wi-Fi switch,
//! a laptop lid, a proxy timing out) does not end the participant: its media connections keep
//! running, it stays in the room, and for a grace period the same page can come back on a new
//! socket as the same participant (`join` with `resume`).
//!
//! The participant's state (room queue, media connections) lives in one [`Participant`] value
//! that moves between tasks: from the lost socket's task to a parked task that keeps it in step
//! with the room, and from there (or from a socket not yet noticed to be dead) to the new
//! socket's task, through a handoff channel registered in [`Resumables`].

use super::{Conn, End, Participant, wait_shutdown};
use crate::room::{RoomCommand, RoomEvent};
use hearth_media::MediaEvent;
use hearth_proto::{ErrorCode, PROTOCOL_VERSION, ParticipantId, ServerMessage, SessionId};
use hearth_store::secrets;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a new socket waits for the participant to be handed over. The handover is a few
/// channel hops; a holder that takes longer is stuck, and the join then starts fresh.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(5);

/// A request for a participant: the task holding it sends it down `0`.
pub(crate) struct Handoff(pub(crate) oneshot::Sender<Participant>);

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handoff")
    }
}

/// What a new socket must show to take a participant over.
struct Resumable {
    session_id: SessionId,
    /// Hash of the participant's resume token (the token itself is never kept).
    credential_hash: String,
    handoff: mpsc::Sender<Handoff>,
}

/// Every joined participant that could be resumed, by id. Entries live as long as their
/// [`Registration`], which lives inside the participant, so the map never outgrows the
/// participants present.
#[derive(Default)]
pub(crate) struct Resumables(Mutex<HashMap<ParticipantId, Resumable>>);

impl Resumables {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Resumable>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a participant who just entered; returns the guard that unregisters it and the
    /// channel its holder must answer handoff requests on.
    pub(crate) fn register(
        self: &Arc<Self>,
        id: &ParticipantId,
        session_id: &SessionId,
        credential_hash: String,
    ) -> (Registration, mpsc::Receiver<Handoff>) {
        let (handoff, requests) = mpsc::channel(1);
        self.lock().insert(
            id.clone(),
            Resumable {
                session_id: session_id.clone(),
                credential_hash,
                handoff,
            },
        );
        let guard = Registration {
            id: id.clone(),
            registry: Arc::clone(self),
        };
        (guard, requests)
    }

    /// The handoff channel of participant `id`, if `token` is theirs in `session_id`.
    fn find(
        &self,
        id: &ParticipantId,
        session_id: &SessionId,
        token: &str,
    ) -> Option<mpsc::Sender<Handoff>> {
        let map = self.lock();
        let entry = map.get(id)?;
        let hash = secrets::hash_secret(token);
        (entry.session_id == *session_id && entry.credential_hash == hash)
            .then(|| entry.handoff.clone())
    }
}

/// Keeps a participant resumable while it exists.
pub(crate) struct Registration {
    id: ParticipantId,
    registry: Arc<Resumables>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Conn {
    /// Takes over participant `id` for this socket if `token` proves it is theirs and the
    /// server still holds them, and sends the `joined` that says so. `None` when there is
    /// nothing to resume; the caller then joins afresh.
    pub(super) async fn resume(
        &mut self,
        session_id: &SessionId,
        id: &ParticipantId,
        token: &str,
    ) -> Result<Option<Participant>, End> {
        let Some(handoff) = self.state.resumables().find(id, session_id, token) else {
            return Ok(None);
        };
        let (tx, rx) = oneshot::channel();
        if handoff.send(Handoff(tx)).await.is_err() {
            return Ok(None);
        }
        let Ok(Ok(mut p)) = tokio::time::timeout(HANDOFF_TIMEOUT, rx).await else {
            return Ok(None);
        };
        let (reply, answer) = oneshot::channel();
        let asked = p
            .session
            .room
            .send(RoomCommand::Resync {
                id: id.clone(),
                reply,
            })
            .await;
        let Some(joined) = asked.ok().and(answer.await.ok()).flatten() else {
            // They are not in the room any more (removed, or the session ended meanwhile).
            p.leave().await;
            return Ok(None);
        };
        let span = tracing::Span::current();
        span.record("session_id", tracing::field::display(session_id));
        span.record("participant_id", tracing::field::display(id));
        tracing::info!("participant resumed on a new socket");
        self.state.metrics().resumed();
        let joined = *joined;
        let welcome = ServerMessage::Joined {
            version: PROTOCOL_VERSION,
            participant_id: id.clone(),
            role: joined.role,
            session: joined.session,
            participants: joined.participants,
            audience: joined.audience,
            tracks: joined.tracks,
            settings: joined.settings,
            chat: joined.chat,
            resume_token: token.to_owned(),
            invite_url: joined.invite_url,
            waiting: joined.waiting,
            recording: joined.recording,
            resumed: true,
        };
        if !self.send(&welcome).await {
            // Lost again at once: park it again rather than lose it.
            park(
                p,
                self.state.config().resume_grace,
                self.state.shutdown_signal(),
            );
            return Err(End::Lost);
        }
        // An offer sent to the old socket may never have reached the page, and its answer
        // cannot arrive here: offer again, with whatever changed while the socket was down.
        if p.offer_outstanding {
            p.offer_outstanding = false;
            p.needs_offer = true;
        }
        Ok(Some(p))
    }
}

/// Keeps a participant whose socket was lost in step with its room for `grace`: forwards its
/// published tracks, follows subscription changes, and drops messages meant for the page (it
/// gets the room afresh in `joined` when it resumes). Leaves the room when the grace runs out.
pub(super) fn park(
    mut p: Participant,
    grace: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            tracing::info!(
                grace_s = grace.as_secs(),
                "socket lost; holding the participant"
            );
            let expiry = tokio::time::sleep(grace);
            tokio::pin!(expiry);
            loop {
                tokio::select! {
                    request = p.handoff.recv() => {
                        if let Some(Handoff(to)) = request {
                            // If the new socket gave up meanwhile, the participant comes back
                            // in the error and leaves.
                            if let Err(mut p) = to.send(p) {
                                p.leave().await;
                            }
                            return;
                        }
                    }
                    event = p.room_events.recv() => match event {
                        None | Some(RoomEvent::Close(_)) => break,
                        Some(RoomEvent::Subscribe(track)) => {
                            let id = track.id().clone();
                            match p.subscriber.add_track(track).await {
                                Ok(()) => p.needs_offer = true,
                                Err(e) => tracing::warn!(track_id = %id, error = %e, "cannot forward track"),
                            }
                        }
                        Some(RoomEvent::Unsubscribe(id)) => {
                            if p.subscriber.remove_track(&id).await {
                                p.needs_offer = true;
                            }
                        }
                        Some(RoomEvent::Message(_) | RoomEvent::Admitted(_)) => {}
                    },
                    Some(event) = p.media_events.recv() => match event {
                        MediaEvent::TrackPublished(track) => {
                            let _ = p.session.room.send(RoomCommand::TrackPublished { track }).await;
                        }
                        MediaEvent::TrackEnded(id) => {
                            let _ = p.session.room.send(RoomCommand::TrackEnded { id }).await;
                        }
                        // A connection that failed for good means the page is gone, not
                        // just its socket: nothing is left to resume.
                        MediaEvent::State { failed: true, .. } => {
                            tracing::info!("media connection failed while the socket was lost; leaving");
                            break;
                        }
                        // Candidates would go to the page; the connections are up already.
                        MediaEvent::Candidate { .. } | MediaEvent::State { .. } => {}
                    },
                    () = &mut expiry => {
                        tracing::info!("not resumed in time; leaving");
                        break;
                    }
                    () = wait_shutdown(&mut shutdown) => break,
                }
            }
            p.leave().await;
        },
        span,
    ));
}

/// Whether a connection that ended this way keeps its participant for a resume.
pub(super) fn parks(end: &End) -> bool {
    // Lost: the socket broke without a close frame. Idle: the socket went quiet, as a dead
    // Wi-Fi link looks from here. A close frame (the page went away), `leave`, and every
    // fatal refusal end the participant at once.
    matches!(end, End::Lost | End::Fatal(ErrorCode::IdleTimeout))
}
