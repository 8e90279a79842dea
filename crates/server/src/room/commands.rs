//! The vocabulary between connections and their room task: commands in, events out.

use super::HostAction;
use crate::metrics::RoomTotals;
use hearth_media::PublishedTrack;
use hearth_proto::{
    ChatMessage, ErrorCode, MediaKind, ParticipantId, ParticipantInfo, RecordingId,
    RecordingStatus, Role, ServerMessage, SessionInfo, SessionSettings, TrackId, TrackInfo,
    WaitingInfo,
};
use hearth_store::Store;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Events queued for one participant before they count as too slow.
pub const PARTICIPANT_QUEUE: usize = 256;

/// A refusal: a stable code and a sentence.
pub type Refusal = (ErrorCode, String);

/// Who is joining, as the connection established it.
#[derive(Debug)]
pub struct JoinRequest {
    /// Their id, chosen by the connection.
    pub id: ParticipantId,
    /// Display name as given.
    pub name: String,
    /// The role their link grants.
    pub role: Role,
    /// Hash of their resume token: identifies them if a host removes them.
    pub credential_hash: String,
    /// Hash of the minted invite they used, if any (revoked if they are removed).
    pub invite_hash: Option<String>,
    /// The plaintext host key, when joining with the host link.
    pub host_key: Option<String>,
    /// Base URL for links, as this client reached the server.
    pub base_url: String,
    /// Where the room's events for them go.
    pub events: mpsc::Sender<RoomEvent>,
}

/// What a connection can ask of its room.
#[derive(Debug)]
pub enum RoomCommand {
    /// Enter the room (or its waiting room).
    Join {
        request: JoinRequest,
        reply: oneshot::Sender<JoinOutcome>,
    },
    /// Leave, or stop waiting (idempotent).
    Leave { id: ParticipantId },
    /// Someone present reconnected: describe the room to them as it is now, as `joined` would.
    /// `None` if they are no longer in the room.
    Resync {
        id: ParticipantId,
        reply: oneshot::Sender<Option<Box<Joined>>>,
    },
    /// One's own microphone or camera on or off.
    Mute {
        id: ParticipantId,
        kind: MediaKind,
        muted: bool,
    },
    /// One's own hand.
    RaiseHand {
        id: ParticipantId,
        raised: bool,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// A chat message.
    Chat {
        id: ParticipantId,
        text: String,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// May this participant publish now?
    MayPublish {
        id: ParticipantId,
        reply: oneshot::Sender<bool>,
    },
    /// A host action.
    Act {
        actor: ParticipantId,
        action: HostAction,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Start (`true`) or stop recording, for the HTTP API (the caller checked the host key).
    Record {
        start: bool,
        reply: oneshot::Sender<Result<Option<RecordingStatus>, Refusal>>,
    },
    /// The recorder's thread ended the recording (`error` when it failed by itself).
    RecordingEnded {
        id: RecordingId,
        error: Option<String>,
    },
    /// The room emptied a while ago: stop recording `id` if nobody came back.
    StopRecordingIfEmpty { id: RecordingId },
    /// Stop recording and hand back the recorder's thread, to wait for its files (shutdown).
    FinishRecording {
        reply: oneshot::Sender<Option<std::thread::JoinHandle<hearth_record::Outcome>>>,
    },
    /// A participant's publish connection produced a track.
    TrackPublished { track: Arc<PublishedTrack> },
    /// A published track ended.
    TrackEnded { id: TrackId },
    /// How many people and tracks (for the HTTP API and tests).
    Occupancy { reply: oneshot::Sender<Occupancy> },
}

/// The answer to a join.
#[derive(Debug)]
pub enum JoinOutcome {
    /// In.
    Joined(Box<Joined>),
    /// In the waiting room; `RoomEvent::Admitted` or a `Close` follows.
    Waiting(SessionInfo),
    /// Refused.
    Refused(Refusal),
}

/// What the room tells a connection.
// `ServerMessage`'s largest variant is `joined`, which never travels as an event (it goes out
// through `JoinOutcome`); boxing every message to shrink a queue of 256 would cost an
// allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RoomEvent {
    /// Send this message to the client.
    Message(ServerMessage),
    /// Start forwarding this track to the client.
    Subscribe(Arc<PublishedTrack>),
    /// Stop forwarding this track.
    Unsubscribe(TrackId),
    /// Admitted from the waiting room.
    Admitted(Box<Joined>),
    /// Removed, declined or the session ended: send this error and close.
    Close(Refusal),
}

/// Everything a newly joined participant is told.
#[derive(Debug)]
pub struct Joined {
    /// The role they have.
    pub role: Role,
    /// Session id and title.
    pub session: SessionInfo,
    /// Everyone else already there whom they hear about (on a stage, the audience only to
    /// hosts and co-hosts).
    pub participants: Vec<ParticipantInfo>,
    /// Attendees in the session.
    pub audience: u32,
    /// Tracks already published (they follow as `Subscribe` events).
    pub tracks: Vec<TrackInfo>,
    /// Current settings.
    pub settings: SessionSettings,
    /// Recent chat.
    pub chat: Vec<ChatMessage>,
    /// The invite link, for hosts and co-hosts when known.
    pub invite_url: Option<String>,
    /// The waiting room, for hosts and co-hosts.
    pub waiting: Vec<WaitingInfo>,
    /// The recording in progress.
    pub recording: Option<RecordingStatus>,
}

/// People and tracks in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    /// Participants.
    pub participants: usize,
    /// Published tracks.
    pub tracks: usize,
    /// People in the waiting room.
    pub waiting: usize,
}

/// What a room task starts from.
#[derive(Debug)]
pub struct RoomSetup {
    /// Id and title.
    pub info: SessionInfo,
    /// Settings as stored.
    pub settings: SessionSettings,
    /// How many times the invite link was rotated.
    pub invite_generation: u32,
    /// Where presence and chat are recorded.
    pub store: Arc<Store>,
    /// Server-wide sums of people and tracks, which this room adds its own to.
    pub(crate) totals: Arc<RoomTotals>,
    /// Recording, server-wide.
    pub(crate) recordings: Arc<crate::recordings::Recordings>,
    /// The room's own inbox, for its recorder to report to.
    pub(crate) commands: mpsc::WeakSender<RoomCommand>,
}
