//! Signaling messages. Every message is a JSON object whose `type` field names it
//! (`snake_case`); field names are `snake_case` except inside [`IceCandidate`], which keeps the
//! browser's `RTCIceCandidateInit` names so a page can pass candidates through untouched.

use crate::{ErrorCode, ParticipantId, RecordingId, SessionId, TrackId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Joined with the host link: may do everything, including ending the session.
    Host,
    /// Promoted by a host: runs the session with the host, but cannot end it or act on hosts.
    Cohost,
    /// On stage: may publish in a `stage` session.
    Speaker,
    /// Joined with an invite link: watches and chats; publishes only in a `room` session.
    Attendee,
}

/// The shape of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Everyone may publish camera, microphone and screen.
    #[default]
    Room,
    /// Only hosts, co-hosts and speakers publish; attendees watch, chat and raise a hand.
    Stage,
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// A microphone.
    Microphone,
    /// A camera.
    #[default]
    Camera,
    /// A shared screen or window.
    Screen,
}

/// Settings a host can change while the session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSettings {
    /// Room or stage.
    pub shape: Shape,
    /// No new joins while locked.
    pub locked: bool,
    /// Attendees wait until a host admits them.
    pub waiting_room: bool,
    /// Most participants at once.
    pub max_participants: u32,
}

/// A chat message as everyone sees it. The server fills in who sent it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique id.
    pub id: String,
    /// Sender's participant id.
    pub from: ParticipantId,
    /// Sender's display name at the time.
    pub name: String,
    /// The text (at most [`crate::MAX_CHAT_CHARS`] characters).
    pub text: String,
    /// When the server received it, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Someone waiting to be admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingInfo {
    /// Their id once admitted.
    pub id: ParticipantId,
    /// Display name.
    pub name: String,
}

/// A partial change of settings; absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// New shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// Lock or unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Turn the waiting room on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<bool>,
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
    /// The participant raised their hand (stage sessions).
    #[serde(default)]
    pub hand_raised: bool,
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
    /// Microphone, camera or screen.
    #[serde(default)]
    pub source: TrackSource,
}

/// A recording in progress, as everyone in the session is told about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStatus {
    /// The recording's id.
    pub id: RecordingId,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
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
        /// The `k` parameter of the host link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_key: Option<String>,
        /// The `i` parameter of an invite link. One of `host_key` and `invite_key` is required.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite_key: Option<String>,
        /// The `resume_token` from an earlier `joined` in this session, if the client kept it:
        /// identifies a returning person (a removed one stays out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
        /// The participant this client was, when it reconnects after losing its socket: with
        /// the matching `resume_token` it becomes that participant again (same id, same
        /// role, its media connections untouched) if the server still holds them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ParticipantId>,
    },
    /// An SDP offer for the publish connection (first publish or any change to it).
    PublishOffer {
        /// The offer's SDP.
        sdp: String,
        /// What each sent track is, by MediaStreamTrack id (the track id in the SDP's `msid`).
        /// Tracks not listed are `microphone` (audio) or `camera` (video).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        sources: BTreeMap<String, TrackSource>,
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
    /// The size the client shows a received video track at, in device pixels; 0x0 when it
    /// is not shown (scrolled away, a minimised tab). The server forwards the smallest
    /// simulcast layer that covers it, and none while it is not shown. Until a client says,
    /// there is no limit.
    TrackView {
        /// A video track forwarded to this client.
        track_id: TrackId,
        /// Width, at most [`crate::MAX_VIEW_PIXELS`].
        width: u32,
        /// Height, at most [`crate::MAX_VIEW_PIXELS`].
        height: u32,
    },
    /// The client's media connection lost connectivity: the server restarts ICE on its
    /// subscribe connection with a new `subscribe_offer`. (The client restarts its publish
    /// connection itself, with a `publish_offer` carrying new ICE credentials.)
    IceRestart {
        /// Must be `subscribe`.
        target: PcTarget,
    },
    /// Application-level keepalive; the server answers `pong` with the same `nonce`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: u64,
    },
    /// Leave the session; the server then closes the socket.
    Leave,
    /// Send a chat message to everyone in the session.
    Chat {
        /// 1 to [`crate::MAX_CHAT_CHARS`] characters.
        text: String,
    },
    /// Raise or lower your hand.
    RaiseHand {
        /// Raised (`true`) or lowered.
        raised: bool,
    },
    /// Host action: turn someone's microphone or camera off. There is no remote unmute.
    MuteParticipant {
        /// Whom.
        participant_id: ParticipantId,
        /// Which device.
        kind: MediaKind,
    },
    /// Host action: remove someone; their credential stops working for this session.
    RemoveParticipant {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Host action: change someone's role (promote to co-host, bring on or take off stage).
    SetRole {
        /// Whom.
        participant_id: ParticipantId,
        /// The new role; never `host`.
        role: Role,
    },
    /// Host action: change session settings.
    UpdateSettings {
        /// The changes.
        change: SettingsChange,
    },
    /// Host action: replace the invite link; the old one stops working, people inside stay.
    RotateInvite,
    /// Host action: admit someone from the waiting room.
    Admit {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Host action: turn someone in the waiting room away.
    Decline {
        /// Whom.
        participant_id: ParticipantId,
    },
    /// Host action: end the session for everyone; its links stop working.
    EndSession,
    /// Host action: start recording the session (nothing happens if it already is).
    StartRecording,
    /// Host action: stop recording (nothing happens if it is not).
    StopRecording,
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
        /// Everyone already in the session, not including you. In a `stage` session, unless
        /// you are a host or co-host, this is the stage only: see `audience`.
        participants: Vec<ParticipantInfo>,
        /// How many attendees the session has, you included if you are one. In a `stage`
        /// session only hosts and co-hosts hear about attendees one by one; everyone else
        /// learns the audience's size from this and from `audience` messages.
        #[serde(default)]
        audience: u32,
        /// Every track already published; they arrive through `subscribe_offer`s.
        tracks: Vec<TrackInfo>,
        /// Current settings.
        settings: SessionSettings,
        /// Recent chat, oldest first.
        chat: Vec<ChatMessage>,
        /// Keep this (e.g. in `localStorage`) and send it in later `join`s to this session.
        resume_token: String,
        /// The current invite link: only for hosts and co-hosts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite_url: Option<String>,
        /// People in the waiting room: only for hosts and co-hosts.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waiting: Vec<WaitingInfo>,
        /// The recording in progress, if the session is being recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording: Option<RecordingStatus>,
        /// This is the participant the `join` asked to resume: its media connections are the
        /// ones it had, and this message describes the session as it is now. `false` on a
        /// fresh join, including a resume that came too late (start over then).
        #[serde(default)]
        resumed: bool,
    },
    /// Instead of `joined`: you are in the waiting room until a host admits you (`joined`
    /// follows) or declines (`error` `declined`).
    Waiting {
        /// The session.
        session: SessionInfo,
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
    /// To a simulcast publisher: which layers of one of its tracks to send. Layers nobody
    /// receives are paused (saving the publisher's uplink and encoder) and resumed when someone
    /// wants them again; the smallest always stays on.
    SimulcastLayers {
        /// The publisher's own MediaStreamTrack id (the msid it offered).
        track_id: String,
        /// One flag per layer, smallest first: send it (`true`) or pause it.
        active: Vec<bool>,
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
    /// A chat message (including your own, as the server stamped it).
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// The settings changed.
    SettingsUpdated {
        /// The new settings.
        settings: SessionSettings,
    },
    /// The waiting room changed (hosts and co-hosts only).
    WaitingUpdated {
        /// Everyone waiting now.
        waiting: Vec<WaitingInfo>,
    },
    /// The invite link changed (hosts and co-hosts only).
    InviteRotated {
        /// The new link.
        invite_url: String,
    },
    /// Recording started or stopped. Everyone gets it: a session being recorded says so.
    RecordingUpdated {
        /// The recording in progress; `None` when recording stopped.
        recording: Option<RecordingStatus>,
        /// Why it stopped, when an error stopped it (such as a full disk): hosts and co-hosts
        /// only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Who is speaking changed. Sent to everyone when it changes, and to someone who joins
    /// while anyone holds the floor.
    ActiveSpeaker {
        /// Who holds the floor: the person speaking, or the last one to speak while nobody
        /// does; `None` when nobody has spoken yet or the last speaker left.
        participant_id: Option<ParticipantId>,
        /// Everyone speaking right now, loudest first (at most [`crate::MAX_SPEAKING`]).
        speaking: Vec<ParticipantId>,
    },
    /// The number of attendees changed (`stage` sessions). Sent to everyone at most once a
    /// second, with the count as of then, so a crowd arriving or leaving costs one message per
    /// participant per second rather than one per arrival.
    Audience {
        /// Attendees in the session now.
        count: u32,
    },
    /// A host turned your microphone or camera off. Your `participant_updated` follows.
    MutedByHost {
        /// Which device.
        kind: MediaKind,
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
