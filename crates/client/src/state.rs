//! What a participant observes: the server's announcements and the media it receives.

use hearth_proto::{MediaKind, ParticipantId, ParticipantInfo, TrackInfo};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::codec::VideoCodec;
use crate::frames::FrameTracker;
use crate::payload;
use crate::stats::{LatencyHistogram, now_us};

/// What one received track delivered.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The publisher's participant id (the track's stream id).
    pub from: String,
    /// Audio or video.
    pub kind: Option<MediaKind>,
    /// The negotiated codec's MIME type (`video/H264`), as webrtc-rs resolved it from the first
    /// packet's payload type; empty if it could not.
    pub codec: String,
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
    /// RTP payload bytes received.
    pub bytes: u64,
    /// The highest sender counter among intact packets: how many packets the sender had sent
    /// on this track, so the difference between two readings, against `intact`, is loss.
    pub highest_counter: Option<u32>,
    /// One-way latency of intact packets (receive time minus the payload's send time), in µs.
    pub latency_us: LatencyHistogram,
    /// When the first packet arrived.
    pub first_packet_at: Option<Instant>,
    /// RTCP sender reports received for this track (a browser lines up audio and video by
    /// them, so an SFU must send them for what it forwards).
    pub sender_reports: u64,
    /// VP8 video: which frames arrived whole (what a decoder could show) and the freezes.
    pub frames: FrameTracker,
}

impl Received {
    /// Counts one intact packet with sender counter `counter`, sent at `sent_us`.
    fn intact_packet(&mut self, counter: u32, sent_us: u64, now_us: u64) {
        self.intact += 1;
        // Wrapping comparison: the counter is a u32 that a very long run may wrap.
        let newer = self
            .highest_counter
            .is_none_or(|h| counter.wrapping_sub(h) as i32 > 0);
        if newer {
            self.highest_counter = Some(counter);
        }
        self.latency_us.record(now_us.saturating_sub(sent_us));
    }
}

/// What a participant sent and received, without the rest of [`Snapshot`]: cheap enough for the
/// load tool to read every second from hundreds of participants.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// RTP packets sent on every published track.
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    /// Media received, by track id.
    pub received: BTreeMap<String, Received>,
    /// Signaling messages received from the server.
    pub signal_messages: u64,
    /// Their bytes (the JSON text).
    pub signal_bytes: u64,
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
    /// Media sections (`m=` lines) in the latest subscribe offer: one per track ever
    /// forwarded, unless the server reuses the sections of tracks that ended.
    pub offer_sections: usize,
    /// The signaling socket closed.
    pub closed: bool,
    /// Keyframe requests (PLI/FIR) the server sent for our video.
    pub keyframe_requests: u64,
    /// Keyframes we sent.
    pub keyframes_sent: u64,
    /// RTP packets we sent on every published track.
    pub packets_sent: u64,
    /// RTP payload bytes we sent.
    pub bytes_sent: u64,
    /// RTP packets a lossy clip sender dropped on purpose before sending.
    pub packets_dropped_on_purpose: u64,
    /// Our own state as the server last described it (role, hand, mutes).
    pub me: Option<ParticipantInfo>,
    /// Session settings, as of `joined` and `settings_updated`.
    pub settings: Option<hearth_proto::SessionSettings>,
    /// Chat: history from `joined`, then every `chat` received.
    pub chat: Vec<hearth_proto::ChatMessage>,
    /// The token to send when joining this session again.
    pub resume_token: String,
    /// The invite link (hosts and co-hosts).
    pub invite_url: Option<String>,
    /// The waiting room (hosts and co-hosts).
    pub waiting: Vec<hearth_proto::WaitingInfo>,
    /// Every `muted_by_host` received.
    pub muted_by_host: Vec<MediaKind>,
    /// The recording in progress, as of `joined` and `recording_updated`.
    pub recording: Option<hearth_proto::RecordingStatus>,
    /// Every error a `recording_updated` carried (hosts and co-hosts).
    pub recording_errors: Vec<String>,
    /// Who holds the floor, as of the last `active_speaker`.
    pub active_speaker: Option<ParticipantId>,
    /// Who speaks now, as of the last `active_speaker`.
    pub speaking: Vec<ParticipantId>,
    /// `active_speaker` messages received.
    pub speaker_updates: u64,
    /// Times the server resumed us on a new signaling socket.
    pub resumes: u64,
    /// ICE restarts this participant did (`Participant::restart_ice`).
    pub ice_restarts: u64,
    /// Every `simulcast_layers` the server sent: (our track id, layers to send).
    pub layer_requests: Vec<(String, Vec<bool>)>,
    /// Our simulcast streams' on/off switches, by our track id, smallest layer first.
    pub(crate) layer_switches: BTreeMap<String, Vec<Arc<std::sync::atomic::AtomicBool>>>,
    /// Attendees in the session, as of `joined` and the last `audience`.
    pub audience: u32,
    /// `audience` messages received.
    pub audience_updates: u64,
    /// Signaling messages received from the server, of any type.
    pub signal_messages: u64,
    /// Their bytes (the JSON text).
    pub signal_bytes: u64,
    /// Everyone a `participant_joined`, `participant_updated` or `participant_left` named,
    /// even if forgotten since: whom the server told us about.
    pub heard_about: BTreeSet<ParticipantId>,
}

impl Snapshot {
    /// Forgets the people we no longer hear about (docs/protocol.md, "Who hears about whom"):
    /// on a stage, someone who does not run the session hears about the audience only as a
    /// count, so an attendee kept from before (a speaker sent back, our own co-host role
    /// taken away, a room turned into a stage) would never be updated or removed.
    pub(crate) fn forget_unheard(&mut self) {
        let (Some(me), Some(settings)) = (&self.me, &self.settings) else {
            return;
        };
        let (viewer, shape) = (me.role, settings.shape);
        self.participants
            .retain(|_, p| hearth_core::hears_about(viewer, p.role, shape));
    }

    /// Records what a message said about someone else, forgetting them if we do not hear
    /// about them (only they need checking: our role and the shape did not change).
    pub(crate) fn heard(&mut self, participant: ParticipantInfo) {
        self.heard_about.insert(participant.id.clone());
        let hears = match (&self.me, &self.settings) {
            (Some(me), Some(s)) => hearth_core::hears_about(me.role, participant.role, s.shape),
            _ => true,
        };
        if hears {
            self.participants
                .insert(participant.id.clone(), participant);
        } else {
            self.participants.remove(&participant.id);
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Snapshot>>;

/// Remote tracks by track id, so a test can send RTCP (keyframe requests) for them.
pub(crate) type RemoteTracks = Arc<Mutex<HashMap<String, Arc<dyn TrackRemote>>>>;

pub(crate) fn lock_tracks(
    tracks: &RemoteTracks,
) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TrackRemote>>> {
    tracks.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Snapshot> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) async fn record_track(track: Arc<dyn TrackRemote>, state: Shared) {
    let track_id = track.track_id().await.to_string();
    let from = track.stream_id().await.to_string();
    let kind = match track.kind().await {
        RtpCodecKind::Audio => Some(MediaKind::Audio),
        RtpCodecKind::Video => Some(MediaKind::Video),
        _ => None,
    };
    // webrtc-rs sets the codec before it announces the track, so it is known here.
    let codec = match track.ssrcs().await.first() {
        Some(&ssrc) => track.codec(ssrc).await.map(|c| c.mime_type),
        None => None,
    }
    .unwrap_or_default();
    // Video is decoded in the framing of the codec the subscriber actually negotiated, not the one
    // the publisher is believed to use: a mix-up anywhere on the way shows up as corrupt packets.
    let video_codec = VideoCodec::from_mime(&codec);
    lock(&state).received.insert(
        track_id.clone(),
        Received {
            from: from.clone(),
            kind,
            codec,
            ..Received::default()
        },
    );
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let received_us = now_us();
                let decoded = match kind {
                    Some(MediaKind::Video) => {
                        video_codec.and_then(|c| payload::decode_video_ref(&packet.payload, c))
                    }
                    _ => payload::decode_audio_ref(&packet.payload),
                };
                let mut s = lock(&state);
                let Some(r) = s.received.get_mut(&track_id) else {
                    continue;
                };
                r.packets += 1;
                r.bytes += packet.payload.len() as u64;
                if r.first_packet_at.is_none() {
                    r.first_packet_at = Some(Instant::now());
                }
                match decoded {
                    Some(d) if d.sender == r.from => {
                        r.intact_packet(d.counter, d.sent_us, received_us);
                    }
                    _ => r.corrupt += 1,
                }
                if video_codec == Some(VideoCodec::Vp8) && !packet.payload.is_empty() {
                    // The VP8 payload descriptor's S bit starts a frame's first partition.
                    let starts = packet.payload[0] & 0x10 != 0;
                    r.frames.packet(
                        packet.header.timestamp,
                        packet.header.sequence_number,
                        starts,
                        packet.header.marker,
                        Instant::now(),
                    );
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
            TrackRemoteEvent::OnRtcpPacket(packets) => {
                let reports = packets
                    .iter()
                    .filter(|p| hearth_media::sender_report(p.as_ref()).is_some())
                    .count() as u64;
                if reports > 0
                    && let Some(r) = lock(&state).received.get_mut(&track_id)
                {
                    r.sender_reports += reports;
                }
            }
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => {}
        }
    }
    if let Some(r) = lock(&state).received.get_mut(&track_id) {
        r.ended = true;
    }
}
