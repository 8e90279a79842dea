//! Signaling messages. Every message is a JSON object whose `type` field names it
//! (`snake_case`); field names are `snake_case` except inside [`IceCandidate`], which keeps the
//! browser's `RTCIceCandidateInit` names so a page can pass candidates through untouched.

use crate::{ErrorCode, ParticipantId, SessionId, TrackId};
use serde::{Deserialize, Serialize};

/// Which of a participant's two peer connections a message is about.
///
/// Hearth uses two connections per participant so that each has exactly one side that makes
/// offers: the client offers on `publish` (it knows what it sends), the server offers on
/// `subscribe` (it knows what others send). Neither side ever has to resolve glare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcTarget {
    /// The connection the client sends its own media on (client offers).
    Publish,
    /// The connection the client receives everyone else's media on (server offers).
    Subscribe,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Microphone (Opus).
    Audio,
    /// Camera (VP8, or H.264 when the browser offers it).
    Video,
}

/// A participant's role in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Joined with the host link.
    Host,
    /// Joined with the invite link.
    Attendee,
}

/// One ICE candidate, in the browser's `RTCIceCandidateInit` shape. An empty `candidate`
/// string means "end of candidates".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute line (RFC 8839), without the `a=` prefix.
    pub candidate: String,
    /// The media section's `mid`.
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
    /// The ICE username fragment the candidate belongs to.
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// What everyone in a session knows about one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Stable for this presence in the session.
    pub id: ParticipantId,
    /// Display name, as given at join (trimmed, at most [`crate::MAX_NAME_CHARS`]).
    pub name: String,
    /// Host or attendee.
    pub role: Role,
    /// The participant turned their microphone off.
    pub audio_muted: bool,
    /// The participant turned their camera off.
    pub video_muted: bool,
}

/// One published track. Subscribers match it to the WebRTC track they receive by `id`: the
/// server offers each forwarded track with `msid = <participant_id> <track_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The track's id, equal to the MediaStreamTrack id the subscriber sees.
    pub id: TrackId,
    /// Who publishes it; equal to the MediaStream id the subscriber sees.
    pub participant_id: ParticipantId,
    /// Audio or video.
    pub kind: MediaKind,
    /// MIME type of the codec, e.g. `video/VP8`.
    pub codec: String,
}

/// A session as the people in it see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// The title the host gave it.
    pub title: String,
}

/// Messages from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message on every socket: enter a session.
    Join {
        /// The protocol version the client speaks; must equal [`crate::PROTOCOL_VERSION`].
        version: u32,
        /// The session to join.
        session_id: SessionId,
        /// Display name (1 to [`crate::MAX_NAME_CHARS`] characters after trimming).
        name: String,
        /// The host key from the host link; absent for attendees.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_key: Option<String>,
    },
    /// An SDP offer for the publish connection (first publish or any change to it).
    PublishOffer {
        /// The offer's SDP.
        sdp: String,
    },
    /// The answer to the server's last `subscribe_offer`.
    SubscribeAnswer {
        /// The answer's SDP.
        sdp: String,
    },
    /// A trickled ICE candidate of the client's side of one connection.
    Candidate {
        /// Which connection.
        target: PcTarget,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// The client turned its microphone or camera on or off.
    Mute {
        /// Which device.
        kind: MediaKind,
        /// Off (`true`) or on (`false`).
        muted: bool,
    },
    /// Application-level keepalive; the server answers `pong` with the same `nonce`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: u64,
    },
    /// Leave the session; the server then closes the socket.
    Leave,
}

/// Messages from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `join`: who you are and what is already there.
    Joined {
        /// The server's protocol version.
        version: u32,
        /// Your id in this session.
        participant_id: ParticipantId,
        /// Your role.
        role: Role,
        /// The session.
        session: SessionInfo,
        /// Everyone already in the session, not including you.
        participants: Vec<ParticipantInfo>,
        /// Every track already published; they arrive through `subscribe_offer`s.
        tracks: Vec<TrackInfo>,
    },
    /// Someone entered the session.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone's state changed (e.g. mute).
    ParticipantUpdated {
        /// The new state.
        participant: ParticipantInfo,
    },
    /// Someone left (button, closed tab, lost connection or timed out).
    ParticipantLeft {
        /// Who.
        participant_id: ParticipantId,
    },
    /// Someone published a track; a `subscribe_offer` carrying it follows.
    TrackPublished {
        /// The track.
        track: TrackInfo,
    },
    /// A track ended; a `subscribe_offer` removing it follows.
    TrackUnpublished {
        /// The track.
        track_id: TrackId,
        /// Whose it was.
        participant_id: ParticipantId,
    },
    /// The server's answer to `publish_offer`.
    PublishAnswer {
        /// The answer's SDP.
        sdp: String,
    },
    /// A new offer for the subscribe connection; the client answers with `subscribe_answer`.
    SubscribeOffer {
        /// The offer's SDP.
        sdp: String,
    },
    /// A trickled ICE candidate of the server's side of one connection.
    Candidate {
        /// Which connection.
        target: PcTarget,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Answer to `ping`.
    Pong {
        /// The `nonce` of the ping.
        nonce: u64,
    },
    /// Something went wrong. If [`ErrorCode::is_fatal`], the server closes the socket after it.
    Error {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation, safe to show.
        message: String,
    },
}

impl ServerMessage {
    /// Shorthand for an error message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}
