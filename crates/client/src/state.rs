//! What a participant observes: the server's announcements and the media it receives.

//! A headless participant: one signaling socket, a publish and a subscribe peer connection,
//! synthetic media out, recorded media in.

use hearth_proto::{MediaKind, ParticipantId, ParticipantInfo, TrackInfo};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::payload;

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
