//! Hearth's wire protocol, shared by the server, the headless client and (by document) the web
//! client. `docs/protocol.md` is the human-readable form of this crate; change both together.

mod codec;
mod error;
mod ids;
mod messages;

pub use codec::{DecodeError, decode_client, decode_server, encode};
pub use error::ErrorCode;
pub use ids::{ParticipantId, RecordingId, SessionId, TrackId};
pub use messages::{
    ChatMessage, ClientMessage, IceCandidate, MediaKind, ParticipantInfo, PcTarget,
    RecordingStatus, Role, ServerMessage, SessionInfo, SessionSettings, SettingsChange, Shape,
    TrackInfo, TrackSource, WaitingInfo,
};

/// Version of the signaling protocol. A client announces the version it speaks in `join`; the
/// server refuses any other with [`ErrorCode::UnsupportedVersion`], so old tabs fail loudly
/// instead of misbehaving after an upgrade.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest signaling message accepted, in bytes. An SDP offer from a browser with a dozen
/// tracks is ~15 KiB; anything past this is a bug or an attack.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest message a server may send. Larger than [`MAX_MESSAGE_BYTES`]: `joined` carries
/// everyone present and the chat history, which grow with the session (465 viewers already
/// passed 64 KiB in a load test), and a client has no reason to fear its own server.
pub const MAX_SERVER_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Longest display name, in characters (not bytes), after trimming.
pub const MAX_NAME_CHARS: usize = 64;

/// Longest session title, in characters, after trimming.
pub const MAX_TITLE_CHARS: usize = 120;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 2000;
/// Largest width or height a `track_view` may give: beyond any screen.
pub const MAX_VIEW_PIXELS: u32 = 16_384;

/// Most participants listed as speaking at once in `active_speaker`: more than a handful
/// talking over each other is noise, and the list goes to everyone.
pub const MAX_SPEAKING: usize = 8;

/// Chat messages kept for late joiners (and sent in `joined`).
pub const CHAT_HISTORY: usize = 200;
