//! The subscribe connection: Hearth offers, the client answers. Each forwarded track is a
//! [`DownTrack`]: its own outgoing track and SSRC, written to by the publisher's reader task
//! through a [`DownWriter`] (see [`crate::fanout`]).

use crate::allocation::{self, Allocation, LayerControl};
use crate::codecs;
use crate::error::MediaError;
use crate::fanout::{Arrival, DownSink, Offered, PublishedTrack};
use crate::interceptor::is_keyframe_request;
use crate::peer::{HandlerContext, MediaEvent, PeerFactory, random_ssrc};
use crate::publisher::EarlyCandidates;
use crate::stats::MediaStats;
use futures_util::FutureExt;
use hearth_core::{Decision, Forwarder};
use hearth_proto::{IceCandidate, MediaKind, PcTarget, TrackId};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpTransceiverId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

/// One forwarded track on one subscriber's connection.
pub struct DownTrack {
    published: Arc<PublishedTrack>,
    sender: Arc<dyn RtpSender>,
    sink_id: u64,
    feedback: JoinHandle<()>,
    /// Holds the `subscribed_tracks` gauge up while this down track exists.
    stats: Arc<MediaStats>,
}

impl DownTrack {
    /// The published track this forwards.
    pub fn published(&self) -> &Arc<PublishedTrack> {
        &self.published
    }

    fn stop(&self) {
        self.feedback.abort();
        self.published.detach(self.sink_id);
    }
}

impl Drop for DownTrack {
    fn drop(&mut self) {
        self.stop();
        MediaStats::decr(&self.stats.subscribed_tracks);
    }
}

/// A participant's subscribe connection.
pub struct Subscriber {
    pc: Arc<dyn PeerConnection>,
    connected: watch::Receiver<bool>,
    tracks: HashMap<TrackId, DownTrack>,
    stats: Arc<MediaStats>,
    early: EarlyCandidates,
    /// Which simulcast layer each video track gets, from the bandwidth estimate.
    allocation: Arc<Allocation>,
    allocator: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.allocator.abort();
    }
}

impl Subscriber {
    /// Creates the subscribe connection; its events go to `events`.
    pub async fn new(
        factory: &PeerFactory,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<Self, MediaError> {
        let (connected_tx, connected) = watch::channel(false);
        let allocation = Arc::new(Allocation::default());
        let ctx = HandlerContext {
            target: PcTarget::Subscribe,
            events,
            public_ip: factory.public_ip(),
            connected: connected_tx,
            on_track: None,
            estimate: Some(Arc::clone(&allocation.estimate)),
            diversions: None,
        };
        let pc = factory.build(ctx).await?;
        let allocator = tokio::spawn(allocation::run(Arc::clone(&allocation)));
        Ok(Self {
            pc,
            connected,
            tracks: HashMap::new(),
            stats: factory.stats_handle(),
            early: EarlyCandidates::default(),
            allocation,
            allocator,
        })
    }

    /// Whether this subscriber already receives `id`.
    pub fn has_track(&self, id: &TrackId) -> bool {
        self.tracks.contains_key(id)
    }

    /// How many tracks this subscriber receives.
    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    /// Records the size (device pixels) the client renders video track `id` at; `None`: it did
    /// not say. A zero size means it is not shown at all (scrolled away, a hidden tab): then
    /// the track's video is not sent until it is shown again. Returns whether this subscriber
    /// receives `id`.
    pub fn set_view(&self, id: &TrackId, view: Option<(u32, u32)>) -> bool {
        self.allocation.set_view(id, view)
    }

    /// Starts forwarding `published` to this subscriber. Takes effect for the client after the
    /// next offer/answer.
    pub async fn add_track(&mut self, published: Arc<PublishedTrack>) -> Result<(), MediaError> {
        if published.is_ended() || self.tracks.contains_key(published.id()) {
            return Ok(());
        }
        let info = published.info().clone();
        let (codec, payload_type) = codecs::codec_for(&info.codec)
            .ok_or_else(|| MediaError::Webrtc(format!("codec {} not forwardable", info.codec)))?;
        let ssrc = random_ssrc();
        let kind = match info.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        // msid = <participant id> <track id>: the browser's ontrack sees them as stream and track
        // ids, which is how the page knows whose tile a track belongs to.
        let track = MediaStreamTrack::new(
            info.participant_id.to_string(),
            info.id.to_string(),
            format!("{}-{}", info.participant_id, info.id),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                // Without the codec here the sender reports and NACK responder never attach.
                codec: codec.clone(),
                ..Default::default()
            }],
        );
        let local = Arc::new(TrackLocalStaticRTP::new(track));
        let sender = self
            .pc
            .add_track(Arc::clone(&local) as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))?;
        self.offer_every_codec(&sender, &codec.mime_type).await;

        let control = self.allocation.add(info.id.clone(), Arc::clone(&published));
        let sink_id = published.attach(Box::new(DownWriter {
            local: Arc::clone(&local),
            forwarder: Forwarder::new(info.kind == MediaKind::Video),
            ssrc,
            payload_type,
            connected: self.connected.clone(),
            control: Arc::clone(&control),
            stats: Arc::clone(&self.stats),
        }));
        let feedback = tokio::spawn(feedback_loop(
            local,
            Arc::clone(&published),
            control,
            Arc::clone(&self.stats),
        ));
        // Counted here and uncounted in `DownTrack`'s drop, so removal, close and an abandoned
        // subscriber all keep the gauge right.
        MediaStats::incr(&self.stats.subscribed_tracks);
        self.tracks.insert(
            info.id.clone(),
            DownTrack {
                published,
                sender,
                sink_id,
                feedback,
                stats: Arc::clone(&self.stats),
            },
        );
        Ok(())
    }

    /// Makes the transceiver behind `sender` offer every codec of its kind, `mime` first (see
    /// [`codecs::offer_order`] for why). If the subscriber already refused some of them (a
    /// browser without H.264), webrtc-rs rejects the list and the transceiver keeps what
    /// `add_track` gave it; such a subscriber could not take the others anyway.
    async fn offer_every_codec(&self, sender: &Arc<dyn RtpSender>, mime: &str) {
        let id = RTCRtpTransceiverId::from(sender.id());
        for transceiver in self.pc.get_transceivers().await {
            if transceiver.id() != id {
                continue;
            }
            if let Err(e) = transceiver
                .set_codec_preferences(codecs::offer_order(mime))
                .await
            {
                tracing::debug!(codec = mime, error = %e, "offering only the track's codec");
            }
            return;
        }
    }

    /// Stops forwarding `id`. Takes effect for the client after the next offer/answer. Returns
    /// whether the track was being forwarded.
    pub async fn remove_track(&mut self, id: &TrackId) -> bool {
        let Some(down) = self.tracks.remove(id) else {
            return false;
        };
        self.allocation.remove(id);
        // Stop the tasks first: the feedback task may hold the track's event lock, which unbinding
        // needs.
        down.stop();
        if let Err(e) = self.pc.remove_track(&down.sender).await {
            tracing::debug!(track_id = %id, error = %e, "remove_track");
        }
        true
    }

    /// Makes the next offer restart ICE (new credentials, fresh candidates): how a client whose
    /// network changed gets its media back.
    pub async fn restart_ice(&self) -> Result<(), MediaError> {
        self.pc
            .restart_ice()
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))
    }

    /// Creates an offer reflecting the current set of tracks, applies it locally and returns its
    /// SDP.
    pub async fn create_offer(&self) -> Result<String, MediaError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))?;
        let sdp = offer.sdp.clone();
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))?;
        Ok(sdp)
    }

    /// Applies the client's answer to the last offer.
    pub async fn handle_answer(&self, sdp: String) -> Result<(), MediaError> {
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.early.flush(self.pc.as_ref()).await;
        Ok(())
    }

    /// Adds a candidate trickled by the client (held until the answer arrives, if it is early).
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), MediaError> {
        self.early.add(self.pc.as_ref(), candidate).await
    }

    /// Whether media can flow.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Stops every down track and closes the connection.
    pub async fn close(&mut self) {
        self.allocator.abort();
        self.allocation.clear();
        for (_, down) in self.tracks.drain() {
            down.stop();
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing subscribe connection");
        }
    }
}

/// Decides, renumbers and writes one track's packets for one subscriber. The subscriber's
/// send queue is the connection's own (webrtc-rs's driver queue, 256 events shared by the
/// connection's tracks): a packet it cannot take at once is lost, never waited for.
struct DownWriter {
    local: Arc<TrackLocalStaticRTP>,
    forwarder: Forwarder,
    ssrc: u32,
    payload_type: u8,
    connected: watch::Receiver<bool>,
    /// The layer the allocation wants, and where the layer being forwarded is reported.
    control: Arc<LayerControl>,
    stats: Arc<MediaStats>,
}

impl DownSink for DownWriter {
    fn offer(&mut self, packet: &rtp::Packet, arrival: &Arrival) -> Offered {
        let wanted = self.control.target();
        if wanted != self.forwarder.target_layer() {
            self.forwarder.set_target(wanted);
            if wanted.is_none() {
                self.control.set_current(None);
            }
        }
        // Until DTLS is up, writes are silently dropped by webrtc-rs; treat that time as a gap so
        // video starts on a keyframe once the subscriber can actually receive it.
        if !*self.connected.borrow() {
            self.forwarder.on_gap();
            return Offered::NotReady;
        }
        match self.forwarder.on_packet(arrival.meta(packet)) {
            Decision::Forward(rewrite) => {
                if rewrite.switched && self.control.current() != Some(arrival.layer) {
                    if self.control.current().is_some() {
                        MediaStats::incr(&self.stats.layer_switches);
                    }
                    self.control.set_current(Some(arrival.layer));
                }
                // A fresh header: the publisher's extensions carry its connection's ids, which
                // mean nothing (or something else) on this one.
                let out = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        marker: packet.header.marker,
                        payload_type: self.payload_type,
                        sequence_number: rewrite.seq,
                        timestamp: rewrite.timestamp,
                        ssrc: self.ssrc,
                        ..Default::default()
                    },
                    payload: packet.payload.clone(),
                };
                let bytes = out.payload.len();
                // Ready at once unless the connection's queue is full (or the track is being
                // bound at this instant): then the packet is lost, like any overflow.
                match self.local.write_rtp(out).now_or_never() {
                    Some(Ok(())) => Offered::Sent { bytes },
                    // Not bound yet (answer not applied) or closing.
                    Some(Err(_)) => {
                        self.forwarder.on_gap();
                        Offered::NotReady
                    }
                    None => {
                        self.forwarder.on_gap();
                        Offered::Full
                    }
                }
            }
            Decision::Drop { request_keyframe } => Offered::WaitingKeyframe { request_keyframe },
            Decision::Skip => Offered::Skipped,
        }
    }

    fn on_gap(&mut self) {
        self.forwarder.on_gap();
    }

    fn wanted_layer(&self) -> Option<u8> {
        self.control.target()
    }
}

/// Relays the subscriber's keyframe requests for this track to its publisher, for the layer
/// it receives.
async fn feedback_loop(
    local: Arc<TrackLocalStaticRTP>,
    published: Arc<PublishedTrack>,
    control: Arc<LayerControl>,
    stats: Arc<MediaStats>,
) {
    loop {
        match local.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                    MediaStats::incr(&stats.keyframe_requests_from_subscribers);
                    match control.current() {
                        Some(layer) => published.request_keyframe_on(layer),
                        None => published.request_keyframe(),
                    }
                }
            }
            Some(_) => {}
            // Not bound yet: negotiation is still under way. Look again shortly.
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
