//! Losing the signaling socket and resuming on a new one, as the web client does after a
//! network change: the peer connections are left alone, and the server is asked to give the new
//! socket the same participant (`join` with `resume`).

use crate::driver::{Ctx, Driver, drive};
use crate::participant::{ClientError, Key, Participant};
use crate::signal::{Signal, SignalError};
use crate::state::lock;
use hearth_proto::{ClientMessage, PROTOCOL_VERSION, ServerMessage, SessionId};
use std::sync::Arc;
use std::time::Duration;

/// What joining again takes.
#[derive(Debug, Clone)]
pub(crate) struct Rejoin {
    pub ws_url: String,
    pub session_id: SessionId,
    pub name: String,
    pub key: Key,
}

impl Participant {
    /// Drops the signaling socket without a close frame, as a network change does: the server
    /// cannot tell the page from a dead link. Media keeps flowing on the peer connections.
    pub async fn lose_signaling(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
            let _ = driver.await;
        }
    }

    /// Connects a new signaling socket and asks the server to resume this participant. `true`:
    /// resumed (same id; the room as it is now replaces what the snapshot knew). `false`: the
    /// server no longer held us and joined us as someone new; that new participant is left
    /// again at once, and this one stays without signaling.
    pub async fn resume_signaling(&mut self) -> Result<bool, ClientError> {
        self.lose_signaling().await;
        let Rejoin {
            ws_url,
            session_id,
            name,
            key,
        } = self.rejoin.clone();
        let mut signal = Signal::connect(&ws_url).await?;
        let (host_key, invite_key) = match key {
            Key::Host(k) => (Some(k), None),
            Key::Invite(k) => (None, Some(k)),
        };
        let token = lock(&self.state).resume_token.clone();
        signal
            .send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                session_id,
                name,
                host_key,
                invite_key,
                resume_token: Some(token),
                resume: Some(self.id().clone()),
            })
            .await?;
        let joined = signal.recv(Duration::from_secs(10)).await?;
        let ServerMessage::Joined {
            participant_id,
            participants,
            audience,
            tracks,
            role,
            settings,
            chat,
            invite_url,
            waiting,
            recording,
            resumed,
            ..
        } = joined
        else {
            if let ServerMessage::Error { code, message } = joined {
                return Err(ClientError::Refused(code, message));
            }
            return Err(ClientError::Signal(SignalError::Decode(format!(
                "expected joined, got {joined:?}"
            ))));
        };
        if !resumed || &participant_id != self.id() {
            let _ = signal.send(&ClientMessage::Leave).await;
            return Ok(false);
        }
        {
            let mut s = lock(&self.state);
            s.participants = participants
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect();
            s.tracks = tracks.into_iter().map(|t| (t.id.to_string(), t)).collect();
            if let Some(me) = s.me.as_mut() {
                me.role = role;
            }
            s.settings = Some(settings);
            s.audience = audience;
            s.chat = chat;
            s.invite_url = invite_url;
            s.waiting = waiting;
            s.recording = recording;
            s.closed = false;
            s.resumes += 1;
        }
        self.driver = Some(tokio::spawn(drive(Driver {
            ws: signal,
            outbox_rx: Arc::clone(&self.outbox_rx),
            close: Arc::clone(&self.close),
            ctx: Ctx {
                outbox: self.outbox.clone(),
                state: Arc::clone(&self.state),
                publish: self.publish.clone(),
                subscribe: Arc::clone(&self.subscribe),
                publish_answer: Arc::clone(&self.publish_answer),
            },
        })));
        Ok(true)
    }
}

impl Participant {
    /// Restarts ICE on both media connections, as the web client does when its media stays
    /// disconnected (the network changed, or was gone longer than the server waits): the
    /// publish connection with a new offer carrying new ICE credentials, the subscribe one by
    /// asking the server (`ice_restart`), whose new offer the driver answers.
    pub async fn restart_ice(&mut self) -> Result<(), ClientError> {
        let webrtc = |e: webrtc::error::Error| ClientError::Webrtc(e.to_string());
        self.send(ClientMessage::IceRestart {
            target: hearth_proto::PcTarget::Subscribe,
        })
        .await;
        let Some(publish) = self.publish.clone() else {
            return Ok(());
        };
        publish.restart_ice().await.map_err(webrtc)?;
        let offer = publish.create_offer(None).await.map_err(webrtc)?;
        let sdp = offer.sdp.clone();
        publish.set_local_description(offer).await.map_err(webrtc)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self
            .publish_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.send(ClientMessage::PublishOffer {
            sdp,
            sources: Default::default(),
        })
        .await;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| ClientError::Signal(SignalError::Timeout))?
            .map_err(|_| ClientError::Signal(SignalError::Closed))?;
        let answer = rtc::peer_connection::sdp::RTCSessionDescription::answer(answer)
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        publish
            .set_remote_description(answer)
            .await
            .map_err(webrtc)?;
        lock(&self.state).ice_restarts += 1;
        Ok(())
    }
}
