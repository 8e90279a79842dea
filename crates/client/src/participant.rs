//! A headless participant: one signaling socket, a publish and a subscribe peer connection,
//! synthetic media out, recorded media in.

use crate::signal::{Signal, SignalError};
use hearth_proto::{
    ClientMessage, MediaKind, PROTOCOL_VERSION, ParticipantId, PcTarget, ServerMessage, SessionId,
};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::PeerConnection;

use crate::codec::opus;
use crate::driver::{Ctx, Driver, drive};
use crate::peer::{Handler, build_pc};
use crate::publish::{
    NO_AUDIO_LEVEL, PublishOptions, mid_of_track, send_media, watch_keyframe_requests,
};
use crate::state::{RemoteTracks, Shared, Snapshot, Traffic, lock, lock_tracks};

/// A headless participant. Dropping it closes everything (like closing a tab).
pub struct Participant {
    id: ParticipantId,
    pub(crate) state: Shared,
    pub(crate) outbox: mpsc::Sender<ClientMessage>,
    /// `None` for a receive-only participant: a viewer never publishes, so it does not pay for
    /// a peer connection (a socket, ICE and DTLS) it would never use.
    pub(crate) publish: Option<Arc<dyn PeerConnection>>,
    pub(crate) subscribe: Arc<dyn PeerConnection>,
    /// When joining began (before the WebSocket connected): the load tool's join time runs from
    /// here to the first media packet.
    join_started: Instant,
    pub(crate) publish_answer: Arc<Mutex<Option<oneshot::Sender<String>>>>,
    tasks: Vec<JoinHandle<()>>,
    bind_ip: IpAddr,
    remote_tracks: RemoteTracks,
    /// The level our audio packets say they carry (-dBov; see [`Participant::set_audio_level`]).
    audio_level: Arc<AtomicU8>,
    /// The task relaying the signaling socket; replaced when the socket is.
    pub(crate) driver: Option<JoinHandle<()>>,
    pub(crate) outbox_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<ClientMessage>>>,
    pub(crate) close: Arc<tokio::sync::Notify>,
    /// What joining again on a new socket takes.
    pub(crate) rejoin: crate::reconnect::Rejoin,
}

/// Why a participant could not join or publish.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Signaling failed.
    #[error(transparent)]
    Signal(#[from] SignalError),
    /// The server refused.
    #[error("server error {0}: {1}")]
    Refused(hearth_proto::ErrorCode, String),
    /// webrtc-rs failed.
    #[error("webrtc: {0}")]
    Webrtc(String),
    /// A receive-only participant was asked to publish.
    #[error("a receive-only participant cannot publish")]
    ReceiveOnly,
}

impl ClientError {
    /// The HTTP status when the server refused the WebSocket upgrade itself (429 when over the
    /// per-address connection limit), before any protocol message.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Signal(SignalError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(
                response,
            ))) => Some(response.status().as_u16()),
            _ => None,
        }
    }
}

/// How to join, beyond the link.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// The `resume_token` of an earlier join to this session.
    pub resume_token: Option<String>,
    /// Subscribe only: no publish peer connection, and [`Participant::publish_with`] fails.
    /// What a viewer of a live session is.
    pub receive_only: bool,
}

/// The key of the link a participant joins with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The host link's `k`.
    Host(String),
    /// An invite link's `i`.
    Invite(String),
}

impl Participant {
    /// Joins `session_id` on the server at `http_base` (e.g. `http://127.0.0.1:8080`) as `name`
    /// with the link key `key`. Media sockets bind to `bind_ip` (use 127.0.0.1 in tests).
    pub async fn join(
        http_base: &str,
        session_id: &SessionId,
        name: &str,
        key: Key,
        bind_ip: IpAddr,
    ) -> Result<Self, ClientError> {
        Self::join_as(http_base, session_id, name, key, None, bind_ip).await
    }

    /// Like [`Participant::join`], presenting `resume_token` from an earlier join. If the
    /// session has a waiting room, this waits (up to 30 s) to be admitted.
    pub async fn join_as(
        http_base: &str,
        session_id: &SessionId,
        name: &str,
        key: Key,
        resume_token: Option<String>,
        bind_ip: IpAddr,
    ) -> Result<Self, ClientError> {
        let options = JoinOptions {
            resume_token,
            ..JoinOptions::default()
        };
        Self::join_with(http_base, session_id, name, key, bind_ip, options).await
    }

    /// Like [`Participant::join`], with [`JoinOptions`].
    pub async fn join_with(
        http_base: &str,
        session_id: &SessionId,
        name: &str,
        key: Key,
        bind_ip: IpAddr,
        options: JoinOptions,
    ) -> Result<Self, ClientError> {
        let JoinOptions {
            resume_token,
            receive_only,
        } = options;
        let join_started = Instant::now();
        let ws_url = format!("{}/ws", http_base.replacen("http", "ws", 1));
        let mut signal = Signal::connect(&ws_url).await?;
        let rejoin = crate::reconnect::Rejoin {
            ws_url: ws_url.clone(),
            session_id: session_id.clone(),
            name: name.to_owned(),
            key: key.clone(),
        };
        let (host_key, invite_key) = match key {
            Key::Host(k) => (Some(k), None),
            Key::Invite(k) => (None, Some(k)),
        };
        signal
            .send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                session_id: session_id.clone(),
                name: name.to_owned(),
                host_key,
                invite_key,
                resume_token,
                resume: None,
            })
            .await?;
        let mut joined = signal.recv(Duration::from_secs(10)).await?;
        if matches!(joined, ServerMessage::Waiting { .. }) {
            joined = signal.recv(Duration::from_secs(30)).await?;
        }
        let ServerMessage::Joined {
            participant_id,
            participants,
            audience,
            tracks,
            role,
            settings,
            chat,
            resume_token,
            invite_url,
            waiting,
            recording,
            ..
        } = joined
        else {
            if let ServerMessage::Error { code, message } = joined {
                return Err(ClientError::Refused(code, message));
            }
            return Err(ClientError::Webrtc(format!("unexpected {joined:?}")));
        };
        let state: Shared = Arc::new(Mutex::new(Snapshot {
            participant_id: Some(participant_id.clone()),
            participants: participants
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            tracks: tracks.into_iter().map(|t| (t.id.to_string(), t)).collect(),
            me: Some(hearth_proto::ParticipantInfo {
                id: participant_id.clone(),
                name: name.trim().to_owned(),
                role,
                audio_muted: false,
                video_muted: false,
                hand_raised: false,
            }),
            settings: Some(settings),
            chat,
            resume_token,
            invite_url,
            waiting,
            recording,
            audience,
            ..Snapshot::default()
        }));
        let (outbox, outbox_rx) = mpsc::channel(256);
        let remote_tracks: RemoteTracks = Arc::default();
        let publish = if receive_only {
            None
        } else {
            let handler = Handler {
                target: PcTarget::Publish,
                outbox: outbox.clone(),
                state: Arc::clone(&state),
                remote_tracks: None,
            };
            Some(
                build_pc(bind_ip, handler)
                    .await
                    .map_err(ClientError::Webrtc)?,
            )
        };
        let subscribe = build_pc(
            bind_ip,
            Handler {
                target: PcTarget::Subscribe,
                outbox: outbox.clone(),
                state: Arc::clone(&state),
                remote_tracks: Some(Arc::clone(&remote_tracks)),
            },
        )
        .await
        .map_err(ClientError::Webrtc)?;
        let publish_answer = Arc::new(Mutex::new(None));
        let outbox_rx = Arc::new(tokio::sync::Mutex::new(outbox_rx));
        let close = Arc::new(tokio::sync::Notify::new());
        let driver = tokio::spawn(drive(Driver {
            ws: signal,
            outbox_rx: Arc::clone(&outbox_rx),
            close: Arc::clone(&close),
            ctx: Ctx {
                outbox: outbox.clone(),
                state: Arc::clone(&state),
                publish: publish.clone(),
                subscribe: Arc::clone(&subscribe),
                publish_answer: Arc::clone(&publish_answer),
            },
        }));
        Ok(Self {
            id: participant_id,
            state,
            outbox,
            publish,
            subscribe,
            join_started,
            publish_answer,
            tasks: Vec::new(),
            bind_ip,
            remote_tracks,
            audio_level: Arc::new(AtomicU8::new(NO_AUDIO_LEVEL)),
            driver: Some(driver),
            outbox_rx,
            close,
            rejoin,
        })
    }

    /// Our participant id.
    pub fn id(&self) -> &ParticipantId {
        &self.id
    }

    /// A copy of everything observed so far.
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.state).clone()
    }

    /// A copy of the media counters only: what was sent and received so far.
    pub fn traffic(&self) -> Traffic {
        let s = lock(&self.state);
        Traffic {
            packets_sent: s.packets_sent,
            bytes_sent: s.bytes_sent,
            received: s.received.clone(),
            signal_messages: s.signal_messages,
            signal_bytes: s.signal_bytes,
        }
    }

    /// When joining began, before the WebSocket connected.
    pub fn join_started(&self) -> Instant {
        self.join_started
    }

    /// Sends a protocol message.
    pub async fn send(&self, message: ClientMessage) {
        let _ = self.outbox.send(message).await;
    }

    /// Publishes one Opus and one VP8 track of synthetic media: audio at 50 packets/s, video at
    /// 30 frames/s of `video_packets_per_frame` packets, a keyframe every half second.
    pub async fn publish(&mut self, video_packets_per_frame: u16) -> Result<(), ClientError> {
        self.publish_with(PublishOptions {
            video_packets_per_frame,
            ..PublishOptions::default()
        })
        .await
    }

    /// Publishes synthetic audio and video as described by `options`: Opus, and video in
    /// `options.video_codec`.
    pub async fn publish_with(&mut self, options: PublishOptions) -> Result<(), ClientError> {
        let Some(publish) = self.publish.clone() else {
            return Err(ClientError::ReceiveOnly);
        };
        let me = self.id.to_string();
        let mut locals = Vec::new();
        let mut sources = std::collections::BTreeMap::new();
        let mut tracks = Vec::new();
        if options.audio {
            tracks.push((RtpCodecKind::Audio, opus(), "audio"));
        }
        // A clip's video is in the clip's codec.
        let video_codec = options
            .clip
            .as_ref()
            .map_or(options.video_codec, |(clip, _)| clip.codec);
        if options.video {
            tracks.push((RtpCodecKind::Video, video_codec.rtp_codec(), "video"));
        }
        if options.screen {
            tracks.push((
                RtpCodecKind::Video,
                options.video_codec.rtp_codec(),
                "screen",
            ));
            sources.insert(format!("{me}-screen"), hearth_proto::TrackSource::Screen);
        }
        for (kind, codec, label) in tracks {
            // The camera in layers if asked: (SSRC, RID, bitrate) per stream.
            let streams: Vec<(u32, &str, Option<u32>)> = match &options.simulcast {
                Some(rates) if label == "video" && options.clip.is_none() => rates
                    .iter()
                    .zip(crate::publish::SIMULCAST_RIDS)
                    .map(|(rate, rid)| (rand::random::<u32>() | 1, rid, Some(*rate)))
                    .collect(),
                _ => vec![(rand::random::<u32>() | 1, "", options.video_bitrate)],
            };
            let encodings = streams
                .iter()
                .map(|(ssrc, rid, _)| RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        rid: (*rid).to_owned(),
                        ssrc: Some(*ssrc),
                        ..Default::default()
                    },
                    codec: codec.clone(),
                    ..Default::default()
                })
                .collect();
            let track_id = format!("{me}-{label}");
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                me.clone(),
                track_id.clone(),
                label.to_owned(),
                kind,
                encodings,
            )));
            publish
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| ClientError::Webrtc(e.to_string()))?;
            let streams: Vec<(u32, String, Option<u32>)> = streams
                .into_iter()
                .map(|(ssrc, rid, rate)| (ssrc, rid.to_owned(), rate))
                .collect();
            locals.push((kind, track, track_id, streams));
        }
        let offer = publish
            .create_offer(None)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        let sdp = offer.sdp.clone();
        publish
            .set_local_description(offer)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        *self
            .publish_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.send(ClientMessage::PublishOffer {
            sdp: sdp.clone(),
            sources,
        })
        .await;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| ClientError::Signal(SignalError::Timeout))?
            .map_err(|_| ClientError::Signal(SignalError::Closed))?;
        let level_ext = hearth_media::sdp::extmap_id(&answer, crate::peer::AUDIO_LEVEL_URI);
        let rid_ext = hearth_media::sdp::extmap_id(&answer, crate::publish::RID_URI);
        let mid_ext = hearth_media::sdp::extmap_id(&answer, crate::publish::MID_URI);
        if let Some(level) = options.audio_level {
            self.set_audio_level(level);
        }
        let answer = RTCSessionDescription::answer(answer)
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        publish
            .set_remote_description(answer)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        for (kind, track, track_id, streams) in locals {
            let flags: Vec<(u32, Arc<AtomicBool>)> = streams
                .iter()
                .map(|(ssrc, _, _)| (*ssrc, Arc::new(AtomicBool::new(true))))
                .collect();
            if kind == RtpCodecKind::Video {
                self.tasks.push(tokio::spawn(watch_keyframe_requests(
                    Arc::clone(&track),
                    flags.clone(),
                    Arc::clone(&self.state),
                )));
            }
            // A simulcast layer is told apart by its RID; the SFU needs the MID to find the
            // media section of an SSRC it was never told about.
            let mid = mid_of_track(&sdp, &track_id);
            let switches: Vec<Arc<AtomicBool>> = streams
                .iter()
                .map(|_| Arc::new(AtomicBool::new(true)))
                .collect();
            if streams.len() > 1 {
                lock(&self.state)
                    .layer_switches
                    .insert(track_id.clone(), switches.clone());
            }
            for (((ssrc, rid, rate), (_, wants_keyframe)), on) in
                streams.into_iter().zip(flags).zip(switches)
            {
                let mut fixed_extensions = Vec::new();
                if !rid.is_empty() {
                    if let (Some(id), Some(mid)) = (mid_ext, &mid) {
                        fixed_extensions.push((id, bytes::Bytes::from(mid.clone().into_bytes())));
                    }
                    if let Some(id) = rid_ext {
                        fixed_extensions.push((id, bytes::Bytes::from(rid.into_bytes())));
                    }
                }
                let mut options = options.clone();
                if kind == RtpCodecKind::Video && rate.is_some() {
                    options.video_bitrate = rate;
                }
                self.spawn_sender(
                    kind,
                    Arc::clone(&track),
                    (ssrc, wants_keyframe, on),
                    fixed_extensions,
                    options,
                    level_ext,
                );
            }
        }
        Ok(())
    }

    /// Starts sending one RTP stream of a published track: `(ssrc, wants_keyframe, on)` are
    /// its SSRC, its keyframe-request flag and its pause switch.
    fn spawn_sender(
        &mut self,
        kind: RtpCodecKind,
        track: Arc<TrackLocalStaticRTP>,
        (ssrc, wants_keyframe, on): (u32, Arc<AtomicBool>, Arc<AtomicBool>),
        fixed_extensions: Vec<(u8, bytes::Bytes)>,
        options: PublishOptions,
        level_ext: Option<u8>,
    ) {
        let me = self.id.to_string();
        let state = Arc::clone(&self.state);
        let level = (kind == RtpCodecKind::Audio)
            .then_some(level_ext)
            .flatten()
            .map(|ext| (ext, Arc::clone(&self.audio_level)));
        self.tasks.push(tokio::spawn(async move {
            match options.clip.clone() {
                Some((clip, sending)) => {
                    crate::clip::send_clip(kind, track, ssrc, clip, sending, state).await;
                }
                None => {
                    let sender = crate::publish::Sender {
                        kind,
                        track,
                        ssrc,
                        wants_keyframe,
                        level,
                        fixed_extensions,
                        on,
                    };
                    send_media(sender, &me, options, state).await;
                }
            }
        }));
    }

    /// Sends `count` keyframe requests (PLI) for every video track received from `from`, as a
    /// browser does when it cannot decode. Returns how many tracks were asked.
    pub async fn request_keyframes(&self, from: &ParticipantId, count: usize) -> usize {
        let snapshot = self.snapshot();
        let tracks: Vec<Arc<dyn TrackRemote>> = {
            let remote = lock_tracks(&self.remote_tracks);
            snapshot
                .received
                .iter()
                .filter(|(_, r)| r.from == from.as_str() && r.kind == Some(MediaKind::Video))
                .filter_map(|(id, _)| remote.get(id).cloned())
                .collect()
        };
        for track in &tracks {
            let Some(ssrc) = track.ssrcs().await.first().copied() else {
                continue;
            };
            for _ in 0..count {
                let _ = track
                    .write_rtcp(vec![Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    })])
                    .await;
            }
        }
        tracks.len()
    }

    /// Sets how loud our microphone says it is, in -dBov (0 loudest, 127 silence), from the next
    /// audio packet on: what the server's speaker detection hears. Until called (or set in
    /// [`PublishOptions::audio_level`]) audio packets carry no level, like an old browser's.
    pub fn set_audio_level(&self, level: u8) {
        self.audio_level.store(level.min(127), Ordering::Relaxed);
    }

    /// Leaves politely (the `leave` message), then closes everything.
    pub async fn leave(self) {
        self.send(ClientMessage::Leave).await;
        self.vanish().await;
    }

    /// Closes everything, like a tab being closed (no `leave` of its own): the socket gets what
    /// was queued, then a close frame (a browser sends one), the media connections close.
    pub async fn vanish(mut self) {
        self.close.notify_one();
        // The driver may be busy with a negotiation; aborted before its close frame, it would
        // leave the server holding this participant for a resume.
        if let Some(driver) = self.driver.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
        }
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        for task in self.tasks.drain(..).chain(self.driver.take()) {
            task.abort();
        }
        if let Some(publish) = &self.publish {
            let _ = publish.close().await;
        }
        let _ = self.subscribe.close().await;
    }

    /// The IP media sockets bind to.
    pub fn bind_ip(&self) -> IpAddr {
        self.bind_ip
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.driver) {
            task.abort();
        }
    }
}
