//! A headless participant: one signaling socket, a publish and a subscribe peer connection,
//! synthetic media out, recorded media in.

use crate::payload;
use crate::signal::{Signal, SignalError};
use futures_util::{SinkExt, StreamExt};
use hearth_proto::{
    ClientMessage, IceCandidate, MediaKind, PROTOCOL_VERSION, ParticipantId, ParticipantInfo,
    PcTarget, ServerMessage, SessionId, TrackInfo, decode_server, encode,
};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{RTCBundlePolicy, RTCConfigurationBuilder};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

/// Payload types the headless client registers. Deliberately not the server's (111/96), so
/// tests prove the SFU rewrites payload types per subscriber.
const CLIENT_PT_OPUS: u8 = 109;
const CLIENT_PT_VP8: u8 = 98;

/// What one received track delivered.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The publisher's participant id (the track's stream id).
    pub from: String,
    /// Audio or video.
    pub kind: Option<MediaKind>,
    /// Packets received.
    pub packets: u64,
    /// Packets whose payload decoded, checksum and all, and named `from` as sender.
    pub intact: u64,
    /// Packets that were damaged or named someone else.
    pub corrupt: u64,
    /// Payload type of the last packet.
    pub payload_type: u8,
    /// SSRC of the last packet.
    pub ssrc: u32,
    /// Sequence numbers that did not follow their predecessor by one.
    pub seq_jumps: u64,
    last_seq: Option<u16>,
    /// The track ended on the subscribe connection.
    pub ended: bool,
}

/// What the participant knows, as of now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Our id, once joined.
    pub participant_id: Option<ParticipantId>,
    /// Everyone else present, by id.
    pub participants: BTreeMap<ParticipantId, ParticipantInfo>,
    /// Tracks announced by the server (joined + track_published - track_unpublished).
    pub tracks: BTreeMap<String, TrackInfo>,
    /// Media received, by track id.
    pub received: BTreeMap<String, Received>,
    /// Every `participant_left` seen.
    pub left: Vec<ParticipantId>,
    /// Every `track_unpublished` seen (track ids).
    pub unpublished: Vec<String>,
    /// Every error the server sent.
    pub errors: Vec<(hearth_proto::ErrorCode, String)>,
    /// Subscribe offers answered.
    pub offers_answered: u64,
    /// The signaling socket closed.
    pub closed: bool,
    /// Keyframe requests (PLI/FIR) the server sent for our video.
    pub keyframe_requests: u64,
    /// Keyframes we sent.
    pub keyframes_sent: u64,
}

type Shared = Arc<Mutex<Snapshot>>;

/// Remote tracks by track id, so a test can send RTCP (keyframe requests) for them.
type RemoteTracks = Arc<Mutex<HashMap<String, Arc<dyn TrackRemote>>>>;

/// How a participant publishes.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions {
    /// RTP packets per video frame (30 frames a second).
    pub video_packets_per_frame: u16,
    /// A keyframe every this many frames; `None` sends keyframes only when asked (PLI/FIR),
    /// like an encoder would after its first one.
    pub keyframe_every: Option<u32>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            video_packets_per_frame: 3,
            keyframe_every: Some(15),
        }
    }
}

fn lock_tracks(
    tracks: &RemoteTracks,
) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TrackRemote>>> {
    tracks.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Snapshot> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A headless participant. Dropping it closes everything (like closing a tab).
pub struct Participant {
    id: ParticipantId,
    state: Shared,
    outbox: mpsc::Sender<ClientMessage>,
    publish: Arc<dyn PeerConnection>,
    subscribe: Arc<dyn PeerConnection>,
    publish_answer: Arc<Mutex<Option<oneshot::Sender<String>>>>,
    tasks: Vec<JoinHandle<()>>,
    bind_ip: IpAddr,
    remote_tracks: RemoteTracks,
}

struct Handler {
    target: PcTarget,
    outbox: mpsc::Sender<ClientMessage>,
    state: Shared,
    remote_tracks: Option<RemoteTracks>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.outbox.try_send(ClientMessage::Candidate {
                target: self.target,
                candidate: IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                },
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(target_pc = ?self.target, %state, "client connection state");
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(remote_tracks) = &self.remote_tracks else {
            return;
        };
        let id = track.track_id().await.to_string();
        lock_tracks(remote_tracks).insert(id, Arc::clone(&track));
        let state = Arc::clone(&self.state);
        tokio::spawn(record_track(track, state));
    }
}

async fn record_track(track: Arc<dyn TrackRemote>, state: Shared) {
    let track_id = track.track_id().await.to_string();
    let from = track.stream_id().await.to_string();
    let kind = match track.kind().await {
        RtpCodecKind::Audio => Some(MediaKind::Audio),
        RtpCodecKind::Video => Some(MediaKind::Video),
        _ => None,
    };
    lock(&state).received.insert(
        track_id.clone(),
        Received {
            from: from.clone(),
            kind,
            ..Received::default()
        },
    );
    let video = kind == Some(MediaKind::Video);
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let decoded = payload::decode(&packet.payload, video);
                let mut s = lock(&state);
                let Some(r) = s.received.get_mut(&track_id) else {
                    continue;
                };
                r.packets += 1;
                match decoded {
                    Some(d) if d.sender == r.from => r.intact += 1,
                    _ => r.corrupt += 1,
                }
                r.payload_type = packet.header.payload_type;
                r.ssrc = packet.header.ssrc;
                let seq = packet.header.sequence_number;
                if let Some(last) = r.last_seq
                    && seq != last.wrapping_add(1)
                {
                    r.seq_jumps += 1;
                }
                r.last_seq = Some(seq);
            }
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => {}
        }
    }
    if let Some(r) = lock(&state).received.get_mut(&track_id) {
        r.ended = true;
    }
}

fn engine() -> Result<MediaEngine, String> {
    let mut engine = MediaEngine::default();
    let feedback = vec![
        RTCPFeedback { typ: "nack".into(), parameter: String::new() },
        RTCPFeedback { typ: "nack".into(), parameter: "pli".into() },
    ];
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: CLIENT_PT_OPUS,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec { rtcp_feedback: feedback, ..vp8() },
                payload_type: CLIENT_PT_VP8,
            },
            RtpCodecKind::Video,
        )
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

async fn build_pc(
    bind_ip: IpAddr,
    handler: Handler,
) -> Result<Arc<dyn PeerConnection>, String> {
    let mut engine = engine()?;
    // The same tap as the server's, so the publisher sees the keyframe requests the SFU relays.
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(|e| e.to_string())?
        .with(Slot::from(14_000), hearth_media::KeyframeRequestTap::default());
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let runtime = default_runtime().ok_or("webrtc built without a runtime")?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_bundle_policy(RTCBundlePolicy::MaxBundle)
                .build(),
        )
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_runtime(runtime)
        .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(pc))
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
}

impl Participant {
    /// Joins `session_id` on the server at `http_base` (e.g. `http://127.0.0.1:8080`) as `name`.
    /// Media sockets bind to `bind_ip` (use 127.0.0.1 in tests).
    pub async fn join(
        http_base: &str,
        session_id: &SessionId,
        name: &str,
        host_key: Option<String>,
        bind_ip: IpAddr,
    ) -> Result<Self, ClientError> {
        let ws_url = format!("{}/ws", http_base.replacen("http", "ws", 1));
        let mut signal = Signal::connect(&ws_url).await?;
        signal
            .send(&ClientMessage::Join {
                version: PROTOCOL_VERSION,
                session_id: session_id.clone(),
                name: name.to_owned(),
                host_key,
            })
            .await?;
        let joined = signal.recv(Duration::from_secs(10)).await?;
        let ServerMessage::Joined {
            participant_id,
            participants,
            tracks,
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
            participants: participants.into_iter().map(|p| (p.id.clone(), p)).collect(),
            tracks: tracks.into_iter().map(|t| (t.id.to_string(), t)).collect(),
            ..Snapshot::default()
        }));
        let (outbox, outbox_rx) = mpsc::channel(256);
        let remote_tracks: RemoteTracks = Arc::default();
        let publish = build_pc(
            bind_ip,
            Handler {
                target: PcTarget::Publish,
                outbox: outbox.clone(),
                state: Arc::clone(&state),
                remote_tracks: None,
            },
        )
        .await
        .map_err(ClientError::Webrtc)?;
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
        let driver = tokio::spawn(drive(Driver {
            ws: signal,
            outbox_rx,
            ctx: Ctx {
                outbox: outbox.clone(),
                state: Arc::clone(&state),
                publish: Arc::clone(&publish),
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
            publish_answer,
            tasks: vec![driver],
            bind_ip,
            remote_tracks,
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

    /// Publishes synthetic audio and video as described by `options`.
    pub async fn publish_with(&mut self, options: PublishOptions) -> Result<(), ClientError> {
        let me = self.id.to_string();
        let mut locals = Vec::new();
        for (kind, codec, label) in [
            (RtpCodecKind::Audio, opus(), "audio"),
            (RtpCodecKind::Video, vp8(), "video"),
        ] {
            let ssrc: u32 = rand::random::<u32>() | 1;
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                me.clone(),
                format!("{me}-{label}"),
                label.to_owned(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            )));
            self.publish
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| ClientError::Webrtc(e.to_string()))?;
            locals.push((kind, track, ssrc));
        }
        let offer = self
            .publish
            .create_offer(None)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        let sdp = offer.sdp.clone();
        self.publish
            .set_local_description(offer)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        *self.publish_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.send(ClientMessage::PublishOffer { sdp }).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .map_err(|_| ClientError::Signal(SignalError::Timeout))?
            .map_err(|_| ClientError::Signal(SignalError::Closed))?;
        let answer =
            RTCSessionDescription::answer(answer).map_err(|e| ClientError::Webrtc(e.to_string()))?;
        self.publish
            .set_remote_description(answer)
            .await
            .map_err(|e| ClientError::Webrtc(e.to_string()))?;
        for (kind, track, ssrc) in locals {
            let me = me.clone();
            let wants_keyframe = Arc::new(AtomicBool::new(true));
            if kind == RtpCodecKind::Video {
                self.tasks.push(tokio::spawn(watch_keyframe_requests(
                    Arc::clone(&track),
                    Arc::clone(&wants_keyframe),
                    Arc::clone(&self.state),
                )));
            }
            let state = Arc::clone(&self.state);
            self.tasks.push(tokio::spawn(async move {
                send_media(kind, track, ssrc, &me, options, wants_keyframe, state).await;
            }));
        }
        Ok(())
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

    /// Leaves politely (the `leave` message), then closes everything.
    pub async fn leave(mut self) {
        self.send(ClientMessage::Leave).await;
        // Give the driver a moment to flush `leave` before the socket goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.shutdown().await;
    }

    /// Closes everything without a word, like a tab being closed.
    pub async fn vanish(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let _ = self.publish.close().await;
        let _ = self.subscribe.close().await;
    }

    /// The IP media sockets bind to.
    pub fn bind_ip(&self) -> IpAddr {
        self.bind_ip
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Marks that the next video frame must be a keyframe whenever the server asks for one.
async fn watch_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    wants_keyframe: Arc<AtomicBool>,
    state: Shared,
) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets.iter().any(|p| hearth_media::is_keyframe_request(p.as_ref())) {
                    lock(&state).keyframe_requests += 1;
                    wants_keyframe.store(true, Ordering::Relaxed);
                }
            }
            Some(_) => {}
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn send_media(
    kind: RtpCodecKind,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    me: &str,
    options: PublishOptions,
    wants_keyframe: Arc<AtomicBool>,
    state: Shared,
) {
    let packets_per_frame = options.video_packets_per_frame;
    let video = kind == RtpCodecKind::Video;
    let (period, payload_type, ts_step) = if video {
        (Duration::from_millis(33), CLIENT_PT_VP8, 3000u32)
    } else {
        (Duration::from_millis(20), CLIENT_PT_OPUS, 960u32)
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut counter: u32 = 0;
    let mut frame: u32 = 0;
    loop {
        ticker.tick().await;
        let per_frame = if video { packets_per_frame.max(1) } else { 1 };
        let periodic = options.keyframe_every.is_some_and(|n| frame % n.max(1) == 0);
        let keyframe = video && (periodic || wants_keyframe.swap(false, Ordering::Relaxed));
        if keyframe {
            lock(&state).keyframes_sent += 1;
        }
        for i in 0..per_frame {
            let payload = if video {
                // Only the first packet of a frame carries the start-of-partition descriptor.
                let p = payload::video(me, counter, keyframe && i == 0, 1000);
                if i == 0 { p } else { with_continuation(p) }
            } else {
                payload::audio(me, counter, 120)
            };
            let packet = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: !video || i + 1 == per_frame,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            // Before negotiation completes the track is unbound; keep the clock running anyway.
            let _ = track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
            counter = counter.wrapping_add(1);
        }
        timestamp = timestamp.wrapping_add(ts_step);
        frame = frame.wrapping_add(1);
    }
}

/// Clears the start-of-partition bit, making the packet a continuation of its frame.
fn with_continuation(p: bytes::Bytes) -> bytes::Bytes {
    let mut v = p.to_vec();
    v[0] &= !0x10;
    v.into()
}

struct Driver {
    ws: Signal,
    outbox_rx: mpsc::Receiver<ClientMessage>,
    ctx: Ctx,
}

struct Ctx {
    outbox: mpsc::Sender<ClientMessage>,
    state: Shared,
    publish: Arc<dyn PeerConnection>,
    subscribe: Arc<dyn PeerConnection>,
    publish_answer: Arc<Mutex<Option<oneshot::Sender<String>>>>,
}

/// Relays between the signaling socket and the peer connections; records what the server says.
async fn drive(driver: Driver) {
    let Driver { ws, mut outbox_rx, ctx: d } = driver;
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
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(message) = decode_server(&text) else { continue };
                handle(&d, message, &mut pending).await;
            }
        }
    }
    lock(&d.state).closed = true;
}

async fn add_candidate(pc: &dyn PeerConnection, c: IceCandidate) {
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

async fn handle(d: &Ctx, message: ServerMessage, pending: &mut HashMap<PcTarget, Vec<IceCandidate>>) {
    match message {
        ServerMessage::PublishAnswer { sdp } => {
            if let Some(tx) = d.publish_answer.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(sdp);
            }
            // Candidates that raced ahead of the answer are applied once it is set.
            let queued = pending.remove(&PcTarget::Publish).unwrap_or_default();
            let publish = Arc::clone(&d.publish);
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
            let Ok(offer) = RTCSessionDescription::offer(sdp) else { return };
            if d.subscribe.set_remote_description(offer).await.is_err() {
                return;
            }
            for c in pending.remove(&PcTarget::Subscribe).unwrap_or_default() {
                add_candidate(d.subscribe.as_ref(), c).await;
            }
            let Ok(answer) = d.subscribe.create_answer(None).await else { return };
            let sdp = answer.sdp.clone();
            if d.subscribe.set_local_description(answer).await.is_err() {
                return;
            }
            let _ = d.outbox.send(ClientMessage::SubscribeAnswer { sdp }).await;
            lock(&d.state).offers_answered += 1;
        }
        ServerMessage::Candidate { target, candidate } => {
            let pc = match target {
                PcTarget::Publish => &d.publish,
                PcTarget::Subscribe => &d.subscribe,
            };
            if pc.remote_description().await.is_some() {
                add_candidate(pc.as_ref(), candidate).await;
            } else {
                pending.entry(target).or_default().push(candidate);
            }
        }
        ServerMessage::ParticipantJoined { participant }
        | ServerMessage::ParticipantUpdated { participant } => {
            lock(&d.state).participants.insert(participant.id.clone(), participant);
        }
        ServerMessage::ParticipantLeft { participant_id } => {
            let mut s = lock(&d.state);
            s.participants.remove(&participant_id);
            s.left.push(participant_id);
        }
        ServerMessage::TrackPublished { track } => {
            lock(&d.state).tracks.insert(track.id.to_string(), track);
        }
        ServerMessage::TrackUnpublished { track_id, .. } => {
            let mut s = lock(&d.state);
            s.tracks.remove(track_id.as_str());
            s.unpublished.push(track_id.to_string());
        }
        ServerMessage::Error { code, message } => {
            lock(&d.state).errors.push((code, message));
        }
        ServerMessage::Joined { .. } | ServerMessage::Pong { .. } => {}
    }
}
