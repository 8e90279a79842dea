//! The publish connection: the client offers, Hearth answers, and each incoming track becomes a
//! [`PublishedTrack`] that subscribers attach to.

use crate::diversion::{DIVERTED_QUEUE, Diversions};
use crate::error::MediaError;
use crate::fanout::{FANOUT_BUDGET, PublishedTrack, run_keyframe_requests};
use crate::interceptor::sender_report_of;
use crate::pausing::{LayerPauser, TrackLayers};
use crate::peer::{HandlerContext, MediaEvent, PeerFactory, TrackSink};
use crate::simulcast::{MAX_LAYERS, layer_of_rid};
use crate::stats::MediaStats;
use hearth_core::SequenceGaps;
use hearth_proto::{
    IceCandidate, MediaKind, ParticipantId, PcTarget, TrackId, TrackInfo, TrackSource,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

/// A participant's publish connection.
pub struct Publisher {
    /// Which simulcast layers the client was told to pause.
    pauser: std::sync::Mutex<LayerPauser>,
    pc: Arc<dyn PeerConnection>,
    connected: watch::Receiver<bool>,
    early: EarlyCandidates,
    sources: Sources,
    active: Active,
    events: mpsc::Sender<MediaEvent>,
    audio_level_ext: Arc<AtomicU8>,
}

/// What the client said each of its tracks is, by MediaStreamTrack id (from `publish_offer`).
type Sources = Arc<std::sync::Mutex<BTreeMap<String, TrackSource>>>;

/// Published tracks by the client's MediaStreamTrack id, to end the ones a later offer stops
/// sending (webrtc-rs raises no event when a remote transceiver goes inactive).
type Active = Arc<std::sync::Mutex<BTreeMap<String, Arc<PublishedTrack>>>>;

struct PublishSink {
    participant_id: ParticipantId,
    events: mpsc::Sender<MediaEvent>,
    stats: Arc<MediaStats>,
    sources: Sources,
    active: Active,
    /// The id of the audio level extension on this connection, 0 until an answer maps it.
    audio_level_ext: Arc<AtomicU8>,
    /// Simulcast streams read past webrtc-rs (see [`crate::diversion`]).
    diversions: Arc<Diversions>,
}

#[async_trait::async_trait]
impl TrackSink for PublishSink {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(ssrc) = track.ssrcs().await.first().copied() else {
            tracing::warn!(participant_id = %self.participant_id, "remote track without SSRC");
            return;
        };
        let Some(codec) = track.codec(ssrc).await else {
            tracing::warn!(participant_id = %self.participant_id, ssrc, "remote track without codec");
            return;
        };
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            other => {
                tracing::warn!(participant_id = %self.participant_id, ?other, "unsupported track kind");
                return;
            }
        };
        let client_track_id = track.track_id().await.to_string();
        let declared = {
            let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            sources.get(&client_track_id).copied()
        };
        // Audio is always a microphone; video is a camera unless declared a screen.
        let source = match (kind, declared) {
            (MediaKind::Audio, _) => TrackSource::Microphone,
            (MediaKind::Video, Some(TrackSource::Screen)) => TrackSource::Screen,
            (MediaKind::Video, _) => TrackSource::Camera,
        };
        let info = TrackInfo {
            id: TrackId::random(),
            participant_id: self.participant_id.clone(),
            kind,
            codec: codec.mime_type.clone(),
            source,
        };
        tracing::info!(
            participant_id = %self.participant_id, track_id = %info.id, codec = %info.codec, ssrc,
            "track published"
        );
        let (published, keyframe_rx) = PublishedTrack::new(info, Arc::clone(&self.stats));
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client_track_id, Arc::clone(&published));

        // Each simulcast layer is its own RTP stream: the SSRC a keyframe request for a layer
        // must name. Filled in as the layers' first packets arrive.
        let layer_ssrcs: LayerSsrcs = Arc::new(std::sync::Mutex::new([None; MAX_LAYERS]));

        // Keyframe requests from subscribers, throttled, become PLIs to this publisher, one
        // per layer asked for. Weak: the task must not keep the track alive, or it would never
        // see the request channel close.
        let pli_track = Arc::clone(&track);
        let pli_published = Arc::downgrade(&published);
        let pli_ssrcs = Arc::clone(&layer_ssrcs);
        tokio::spawn(run_keyframe_requests(
            keyframe_rx,
            Arc::clone(&self.stats),
            move || {
                let track = Arc::clone(&pli_track);
                let mask = pli_published
                    .upgrade()
                    .map_or(0, |p| p.take_keyframe_layers());
                let known = *pli_ssrcs.lock().unwrap_or_else(|e| e.into_inner());
                let mut plis: Vec<Box<dyn rtc::rtcp::Packet>> = known
                    .iter()
                    .enumerate()
                    .filter(|(layer, _)| mask == 0 || mask & (1 << layer) != 0)
                    .filter_map(|(_, ssrc)| *ssrc)
                    .map(|media_ssrc| {
                        Box::new(PictureLossIndication {
                            sender_ssrc: 0,
                            media_ssrc,
                        }) as Box<dyn rtc::rtcp::Packet>
                    })
                    .collect();
                if plis.is_empty() {
                    plis.push(Box::new(PictureLossIndication {
                        sender_ssrc: 0,
                        media_ssrc: ssrc,
                    }));
                }
                async move { track.write_rtcp(plis).await.is_ok() }
            },
        ));

        // The reader: one task per published track, the only place a packet enters the SFU.
        let reader_track = Arc::clone(&published);
        let events = self.events.clone();
        let stats = Arc::clone(&self.stats);
        let audio_level_ext = (kind == MediaKind::Audio).then(|| Arc::clone(&self.audio_level_ext));
        let diversions = Arc::clone(&self.diversions);
        let (diverted_tx, mut diverted_rx) = mpsc::channel(DIVERTED_QUEUE);
        tokio::spawn(async move {
            let mut budget = FANOUT_BUDGET;
            // SSRC -> layer, for the streams seen so far (at most a few).
            let mut layer_by_ssrc: Vec<(u32, u8)> = Vec::with_capacity(MAX_LAYERS);
            let mut gaps_by_ssrc: Vec<(u32, SequenceGaps)> = Vec::with_capacity(MAX_LAYERS);
            loop {
                let packet = tokio::select! {
                    event = track.poll() => match event {
                        Some(TrackRemoteEvent::OnRtpPacket(packet)) => packet,
                        Some(TrackRemoteEvent::OnOpen(init)) => {
                            let layer = layer_of_rid(init.rid.as_deref());
                            note_layer(&mut layer_by_ssrc, &layer_ssrcs, init.ssrc, layer);
                            if init.rid.as_deref().is_some_and(|rid| !rid.is_empty()) {
                                // A simulcast layer: read it directly from now on.
                                diversions.divert(init.ssrc, diverted_tx.clone());
                            }
                            tracing::debug!(track_id = %reader_track.id(), ssrc = init.ssrc, rid = ?init.rid, layer, "stream opened");
                            continue;
                        }
                        Some(TrackRemoteEvent::OnRtcpPacket(packets)) => {
                            for (ssrc, ntp, rtp) in packets.iter().filter_map(|p| sender_report_of(p.as_ref())) {
                                let layer = layer_by_ssrc
                                    .iter()
                                    .find(|(s, _)| *s == ssrc)
                                    .map_or(0, |(_, l)| *l);
                                reader_track.sender_report(layer, ntp, rtp);
                            }
                            continue;
                        }
                        Some(TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError) | None => break,
                        Some(_) => continue,
                    },
                    Some(packet) = diverted_rx.recv() => packet,
                };
                MediaStats::incr(&stats.packets_in);
                MediaStats::add(&stats.bytes_in, packet.payload.len() as u64);
                note_arrival(&mut gaps_by_ssrc, &packet.header, &stats);
                if let Some(ext) = &audio_level_ext {
                    reader_track.note_audio_level(&packet, ext.load(Ordering::Relaxed));
                }
                let ssrc = packet.header.ssrc;
                let layer = match layer_by_ssrc.iter().find(|(s, _)| *s == ssrc) {
                    Some((_, layer)) => *layer,
                    None => {
                        let rid = track.rid(ssrc).await;
                        let layer = layer_of_rid(rid.as_deref());
                        note_layer(&mut layer_by_ssrc, &layer_ssrcs, ssrc, layer);
                        layer
                    }
                };
                let written = reader_track.forward(packet, layer);
                budget = budget.saturating_sub(written.max(1));
                if budget == 0 {
                    budget = FANOUT_BUDGET;
                    tokio::task::yield_now().await;
                }
            }
            reader_track.end();
            tracing::debug!(track_id = %reader_track.id(), "track ended");
            // The owner may be gone already (participant left); then nobody needs to know.
            let _ = events
                .send(MediaEvent::TrackEnded(reader_track.id().clone()))
                .await;
        });

        if self
            .events
            .send(MediaEvent::TrackPublished(published))
            .await
            .is_err()
        {
            tracing::debug!(participant_id = %self.participant_id, "track arrived after leave");
        }
    }
}

/// Counts the holes in, and late packets of, each stream read. Bounded like the layer list: a
/// publisher cycling SSRCs replaces entries rather than growing it.
fn note_arrival(
    gaps: &mut Vec<(u32, SequenceGaps)>,
    header: &rtp::header::Header,
    stats: &MediaStats,
) {
    let index = match gaps.iter().position(|(s, _)| *s == header.ssrc) {
        Some(index) => index,
        None => {
            if gaps.len() >= MAX_LAYERS * 2 {
                gaps.remove(0);
            }
            gaps.push((header.ssrc, SequenceGaps::new()));
            gaps.len() - 1
        }
    };
    let Some((_, stream)) = gaps.get_mut(index) else {
        return;
    };
    let arrival = stream.note(header.sequence_number);
    if arrival.skipped > 0 {
        MediaStats::add(&stats.packets_in_missing, arrival.skipped);
    }
    if arrival.late {
        MediaStats::incr(&stats.packets_in_late);
    }
}

/// The SSRC of each simulcast layer of one track, as far as known.
type LayerSsrcs = Arc<std::sync::Mutex<[Option<u32>; MAX_LAYERS]>>;

/// Records that `ssrc` carries `layer`. Bounded: a publisher cycling SSRCs replaces entries
/// rather than growing the list.
fn note_layer(by_ssrc: &mut Vec<(u32, u8)>, ssrcs: &LayerSsrcs, ssrc: u32, layer: u8) {
    by_ssrc.retain(|(s, l)| *s != ssrc && *l != layer);
    if by_ssrc.len() >= MAX_LAYERS * 2 {
        by_ssrc.remove(0);
    }
    by_ssrc.push((ssrc, layer));
    if let Some(slot) = ssrcs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(usize::from(layer))
    {
        *slot = Some(ssrc);
    }
}

impl Publisher {
    /// Creates the publish connection for `participant_id`; its events go to `events`.
    pub async fn new(
        factory: &PeerFactory,
        participant_id: ParticipantId,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<Self, MediaError> {
        let (connected_tx, connected) = watch::channel(false);
        let sources = Sources::default();
        let active = Active::default();
        let audio_level_ext = Arc::new(AtomicU8::new(0));
        let diversions = Arc::new(Diversions::default());
        let ctx = HandlerContext {
            target: PcTarget::Publish,
            events: events.clone(),
            public_ip: factory.public_ip(),
            connected: connected_tx,
            on_track: Some(Arc::new(PublishSink {
                participant_id,
                events: events.clone(),
                stats: factory.stats_handle(),
                sources: Arc::clone(&sources),
                active: Arc::clone(&active),
                audio_level_ext: Arc::clone(&audio_level_ext),
                diversions: Arc::clone(&diversions),
            })),
            estimate: None,
            diversions: Some(diversions),
        };
        let pc = factory.build(ctx).await?;
        Ok(Self {
            pauser: std::sync::Mutex::new(LayerPauser::default()),
            pc,
            connected,
            early: EarlyCandidates::default(),
            sources,
            active,
            events,
            audio_level_ext,
        })
    }

    /// Applies the client's offer and returns Hearth's answer. `sources` says what each track
    /// is (by MediaStreamTrack id); it applies to tracks this offer introduces.
    pub async fn handle_offer(
        &self,
        sdp: String,
        sources: BTreeMap<String, TrackSource>,
    ) -> Result<String, MediaError> {
        {
            // Bounded: a client re-offering forever cannot grow this map without limit.
            let mut known = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            if known.len() > 64 {
                known.clear();
            }
            known.extend(sources.into_iter().take(16));
        }
        let sending: std::collections::HashSet<String> = crate::sdp::sending_sections(&sdp)
            .into_iter()
            .filter_map(|s| s.track_id)
            .collect();
        let offer_sdp = sdp.clone();
        let offer =
            RTCSessionDescription::offer(sdp).map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let sdp = answer.sdp.clone();
        tracing::trace!(offer = %offer_sdp, answer = %sdp, "publish negotiation");
        let level_id = crate::sdp::extmap_id(&sdp, crate::codecs::AUDIO_LEVEL_URI).unwrap_or(0);
        self.audio_level_ext.store(level_id, Ordering::Relaxed);
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))?;
        self.early.flush(self.pc.as_ref()).await;
        self.end_stopped(&sending).await;
        Ok(sdp)
    }

    /// Ends the published tracks the latest offer no longer sends (the client removed them,
    /// e.g. stopped sharing its screen or left the stage).
    async fn end_stopped(&self, sending: &std::collections::HashSet<String>) {
        let stopped: Vec<Arc<PublishedTrack>> = {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<String> = active
                .keys()
                .filter(|id| !sending.contains(*id))
                .cloned()
                .collect();
            gone.iter().filter_map(|id| active.remove(id)).collect()
        };
        for track in stopped {
            track.end();
            tracing::debug!(track_id = %track.id(), "track stopped by the publisher's offer");
            let _ = self
                .events
                .send(MediaEvent::TrackEnded(track.id().clone()))
                .await;
        }
    }

    /// The simulcast layers the client should send now, for each of its tracks whose set
    /// changed since the last call (by the client's MediaStreamTrack id; one flag per layer,
    /// smallest first). Call every second or so; see [`crate::pausing`].
    pub fn layer_updates(&self, now: std::time::Instant) -> Vec<(String, Vec<bool>)> {
        let tracks: Vec<(String, Arc<PublishedTrack>)> = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, t)| (id.clone(), Arc::clone(t)))
            .collect();
        let facts: Vec<TrackLayers<'_>> = tracks
            .iter()
            .map(|(id, t)| TrackLayers {
                client_id: id,
                count: t.layer_count(),
                wanted: t.wanted_layers(),
            })
            .collect();
        let changes = self
            .pauser
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(now, &facts);
        changes
            .into_iter()
            .filter_map(|(id, active)| {
                let (_, track) = tracks.iter().find(|(t, _)| *t == id)?;
                let count = track.layer_count();
                let all = (1u32 << count) - 1;
                track.set_paused_layers(all & !active);
                tracing::debug!(track_id = %track.id(), active, "simulcast layers");
                Some((id, (0..count).map(|i| active & (1 << i) != 0).collect()))
            })
            .collect()
    }

    /// Whether `sdp` (an offer) sends any media at all. An offer that only stops tracks needs
    /// no permission to publish.
    pub fn offer_sends_media(sdp: &str) -> bool {
        !crate::sdp::sending_sections(sdp).is_empty()
    }

    /// Adds a candidate trickled by the client (held until the offer arrives, if it is early).
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), MediaError> {
        self.early.add(self.pc.as_ref(), candidate).await
    }

    /// Whether media can flow.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Closes the connection; its tracks end.
    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing publish connection");
        }
    }
}

/// Most candidates held for a connection whose remote description is not set yet. A browser
/// gathers a handful per interface; more than this before an offer is abuse.
const MAX_EARLY_CANDIDATES: usize = 32;

/// Candidates that arrived before the remote description they belong to. Browsers may send
/// their first candidates before (or racing with) the offer or answer; refusing them would
/// make connection setup depend on message timing.
#[derive(Default)]
pub(crate) struct EarlyCandidates {
    held: std::sync::Mutex<Vec<IceCandidate>>,
}

impl EarlyCandidates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IceCandidate>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `candidate` now, or holds it until [`Self::flush`] if `pc` has no remote
    /// description yet.
    pub(crate) async fn add(
        &self,
        pc: &dyn PeerConnection,
        candidate: IceCandidate,
    ) -> Result<(), MediaError> {
        if pc.remote_description().await.is_none() {
            let mut held = self.lock();
            if held.len() >= MAX_EARLY_CANDIDATES {
                return Err(MediaError::InvalidCandidate(format!(
                    "more than {MAX_EARLY_CANDIDATES} candidates before the session description"
                )));
            }
            held.push(candidate);
            return Ok(());
        }
        add_candidate(pc, candidate).await
    }

    /// Applies every held candidate; call after setting the remote description.
    pub(crate) async fn flush(&self, pc: &dyn PeerConnection) {
        let held = std::mem::take(&mut *self.lock());
        for candidate in held {
            if let Err(e) = add_candidate(pc, candidate).await {
                tracing::debug!(error = %e, "early candidate refused");
            }
        }
    }
}

pub(crate) async fn add_candidate(
    pc: &dyn PeerConnection,
    candidate: IceCandidate,
) -> Result<(), MediaError> {
    if candidate.candidate.is_empty() {
        return Ok(()); // end-of-candidates
    }
    pc.add_ice_candidate(RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        username_fragment: candidate.username_fragment,
        ..Default::default()
    })
    .await
    .map_err(|e| MediaError::InvalidCandidate(e.to_string()))
}
