//! The joined participant's loop: client messages, room events, media events, keepalive.

use super::{Conn, End, Participant, wait_shutdown};
use crate::room::{HostAction, Refusal, RoomCommand, RoomEvent};
use axum::extract::ws::Message;
use hearth_media::MediaEvent;
use hearth_proto::{ClientMessage, ErrorCode, PcTarget, ServerMessage, decode_client};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

impl Conn {
    /// The joined participant's loop.
    pub(super) async fn run(&mut self, p: &mut Participant) -> End {
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
        // How often a simulcast publisher hears which of its layers anyone receives.
        let mut layer_check = tokio::time::interval(Duration::from_secs(1));
        layer_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !p.left {
            tokio::select! {
                frame = self.socket.recv() => {
                    if let Some(text) = self.handle_frame(frame).await? {
                        self.on_client_text(p, &text).await?;
                    }
                }
                event = p.room_events.recv() => {
                    let Some(event) = event else {
                        self.error(ErrorCode::TooSlow, "this connection fell behind the session").await?;
                        return Ok(());
                    };
                    self.on_room_event(p, event).await?;
                    // Fold a burst (e.g. everything already published, at join) into one offer.
                    while let Ok(event) = p.room_events.try_recv() {
                        self.on_room_event(p, event).await?;
                    }
                }
                Some(event) = p.media_events.recv() => self.on_media_event(p, event).await?,
                Some(request) = p.handoff.recv() => return Err(End::HandedOff(request)),
                _ = ping.tick() => {
                    if self.socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return Err(End::Closed);
                    }
                }
                _ = idle_check.tick() => {
                    if self.last_heard.elapsed() > idle_after {
                        self.error(ErrorCode::IdleTimeout, "nothing received for too long").await?;
                    }
                }
                _ = layer_check.tick() => {
                    for (track_id, active) in p.publisher.layer_updates(std::time::Instant::now()) {
                        self.reply(&ServerMessage::SimulcastLayers { track_id, active }).await?;
                    }
                }
                () = wait_shutdown(&mut shutdown) => {
                    self.error(ErrorCode::ShuttingDown, "the server is shutting down").await?;
                }
            }
            self.maybe_offer(p).await?;
        }
        Ok(())
    }

    /// Asks the room something and reports a refusal to the client.
    async fn ask(
        &mut self,
        p: &Participant,
        make: impl FnOnce(oneshot::Sender<Result<(), Refusal>>) -> RoomCommand,
    ) -> Result<Result<(), ()>, End> {
        let (reply, answer) = oneshot::channel();
        if p.session.room.send(make(reply)).await.is_err() {
            self.error(ErrorCode::SessionEnded, "this session has ended")
                .await?;
            return Ok(Err(()));
        }
        match answer.await {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err((code, message))) => {
                self.error(code, message).await?;
                Ok(Err(()))
            }
            Err(_) => {
                self.error(ErrorCode::SessionEnded, "this session has ended")
                    .await?;
                Ok(Err(()))
            }
        }
    }

    async fn act(&mut self, p: &Participant, action: HostAction) -> Result<(), End> {
        let ending = action == HostAction::End;
        let actor = p.id.clone();
        let done = self
            .ask(p, |reply| RoomCommand::Act {
                actor,
                action,
                reply,
            })
            .await?;
        if ending && done.is_ok() {
            self.state.sessions().remove(&p.session.info.id);
        }
        Ok(())
    }

    async fn on_client_text(&mut self, p: &mut Participant, text: &str) -> Result<(), End> {
        let message = match decode_client(text) {
            Ok(m) => m,
            Err(e) => return self.error(e.code, e.message).await,
        };
        match message {
            ClientMessage::Join { .. } => {
                self.error(ErrorCode::AlreadyJoined, "this socket already joined")
                    .await
            }
            ClientMessage::Ping { nonce } => self.reply(&ServerMessage::Pong { nonce }).await,
            ClientMessage::PublishOffer { sdp, sources } => {
                // An offer that only stops tracks (leaving the stage, ending a screen share)
                // needs no permission; one that sends media does.
                if !hearth_media::Publisher::offer_sends_media(&sdp) {
                    return match p.publisher.handle_offer(sdp, sources).await {
                        Ok(sdp) => self.reply(&ServerMessage::PublishAnswer { sdp }).await,
                        Err(e) => self.error(ErrorCode::InvalidSdp, e.to_string()).await,
                    };
                }
                let (reply, answer) = oneshot::channel();
                let _ = p
                    .session
                    .room
                    .send(RoomCommand::MayPublish {
                        id: p.id.clone(),
                        reply,
                    })
                    .await;
                if !answer.await.unwrap_or(false) {
                    return self
                        .error(
                            ErrorCode::Forbidden,
                            "you may not publish in this session now; raise your hand",
                        )
                        .await;
                }
                match p.publisher.handle_offer(sdp, sources).await {
                    Ok(sdp) => self.reply(&ServerMessage::PublishAnswer { sdp }).await,
                    Err(e) => self.error(ErrorCode::InvalidSdp, e.to_string()).await,
                }
            }
            ClientMessage::SubscribeAnswer { sdp } => {
                if !p.offer_outstanding {
                    return self
                        .error(
                            ErrorCode::UnexpectedAnswer,
                            "no subscribe_offer is waiting for an answer",
                        )
                        .await;
                }
                p.offer_outstanding = false;
                if let Err(e) = p.subscriber.handle_answer(sdp).await {
                    // Offer again so the client gets another chance with a fresh offer.
                    p.needs_offer = true;
                    return self.error(ErrorCode::InvalidSdp, e.to_string()).await;
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
                    Err(e) => self.error(ErrorCode::InvalidCandidate, e.to_string()).await,
                }
            }
            ClientMessage::TrackView {
                track_id,
                width,
                height,
            } => {
                let max = hearth_proto::MAX_VIEW_PIXELS;
                if width > max || height > max {
                    return self
                        .error(
                            ErrorCode::BadMessage,
                            format!("track_view: width and height are at most {max}"),
                        )
                        .await;
                }
                // A track that is not (or no longer) forwarded is ignored: tracks end at any
                // moment, and a page reporting the size of a tile being removed did nothing
                // wrong.
                if !p.subscriber.set_view(&track_id, Some((width, height))) {
                    tracing::debug!(%track_id, "track_view for a track not forwarded");
                }
                Ok(())
            }
            ClientMessage::IceRestart { target } => match target {
                PcTarget::Subscribe => {
                    if let Err(e) = p.subscriber.restart_ice().await {
                        return self
                            .error(ErrorCode::Internal, format!("ICE restart: {e}"))
                            .await;
                    }
                    self.state.metrics().ice_restarted();
                    // The restart rides on the next subscribe_offer (after the outstanding
                    // one is answered, if there is one).
                    p.needs_offer = true;
                    Ok(())
                }
                PcTarget::Publish => {
                    self.error(
                        ErrorCode::BadMessage,
                        "restart the publish connection with a publish_offer carrying new ICE \
                         credentials",
                    )
                    .await
                }
            },
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
            ClientMessage::Chat { text } => {
                if !p.chat_limiter.take(std::time::Instant::now()) {
                    return self
                        .error(
                            ErrorCode::RateLimited,
                            "chat is limited to a few messages at a time",
                        )
                        .await;
                }
                let id = p.id.clone();
                self.ask(p, |reply| RoomCommand::Chat { id, text, reply })
                    .await
                    .map(|_| ())
            }
            ClientMessage::RaiseHand { raised } => {
                let id = p.id.clone();
                self.ask(p, |reply| RoomCommand::RaiseHand { id, raised, reply })
                    .await
                    .map(|_| ())
            }
            ClientMessage::MuteParticipant {
                participant_id,
                kind,
            } => {
                self.act(
                    p,
                    HostAction::Mute {
                        target: participant_id,
                        kind,
                    },
                )
                .await
            }
            ClientMessage::RemoveParticipant { participant_id } => {
                self.act(
                    p,
                    HostAction::Remove {
                        target: participant_id,
                    },
                )
                .await
            }
            ClientMessage::SetRole {
                participant_id,
                role,
            } => {
                self.act(
                    p,
                    HostAction::SetRole {
                        target: participant_id,
                        role,
                    },
                )
                .await
            }
            ClientMessage::UpdateSettings { change } => {
                self.act(p, HostAction::UpdateSettings(change)).await
            }
            ClientMessage::RotateInvite => self.act(p, HostAction::RotateInvite).await,
            ClientMessage::Admit { participant_id } => {
                self.act(
                    p,
                    HostAction::Admit {
                        target: participant_id,
                    },
                )
                .await
            }
            ClientMessage::Decline { participant_id } => {
                self.act(
                    p,
                    HostAction::Decline {
                        target: participant_id,
                    },
                )
                .await
            }
            ClientMessage::EndSession => self.act(p, HostAction::End).await,
            ClientMessage::StartRecording => self.act(p, HostAction::StartRecording).await,
            ClientMessage::StopRecording => self.act(p, HostAction::StopRecording).await,
        }
    }

    async fn on_room_event(&mut self, p: &mut Participant, event: RoomEvent) -> Result<(), End> {
        match event {
            RoomEvent::Message(message) => self.reply(&message).await?,
            RoomEvent::Subscribe(track) => {
                let id = track.id().clone();
                match p.subscriber.add_track(track).await {
                    Ok(()) => p.needs_offer = true,
                    Err(e) => {
                        tracing::warn!(track_id = %id, error = %e, "cannot forward track");
                    }
                }
            }
            RoomEvent::Unsubscribe(id) => {
                if p.subscriber.remove_track(&id).await {
                    p.needs_offer = true;
                }
            }
            RoomEvent::Admitted(_) => {}
            RoomEvent::Close((code, message)) => {
                self.error(code, message).await?;
                return Err(End::Fatal(code));
            }
        }
        Ok(())
    }

    async fn on_media_event(&mut self, p: &mut Participant, event: MediaEvent) -> Result<(), End> {
        match event {
            MediaEvent::Candidate { target, candidate } => {
                self.reply(&ServerMessage::Candidate { target, candidate })
                    .await?;
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
                tracing::debug!(?target, connected, failed, "media connection state");
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
                self.reply(&ServerMessage::SubscribeOffer { sdp }).await
            }
            Err(e) => {
                self.error(ErrorCode::Internal, format!("subscribe offer: {e}"))
                    .await
            }
        }
    }
}
