//! Stable, machine-readable error codes. Clients switch on these strings, so a code is never
//! renamed or reused; new failures get new codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error the server reports, over HTTP (`{"error":{"code":…}}`) and over the WebSocket
/// (`{"type":"error","code":…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not valid JSON, or not a JSON object.
    BadJson,
    /// The message's `type` is missing or not one this protocol version defines.
    UnknownType,
    /// The message has a known `type` but a field is missing, of the wrong type, or out of range.
    BadMessage,
    /// The message is larger than [`crate::MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// A binary WebSocket frame; the protocol is text only.
    BinaryNotSupported,
    /// Anything but `join` (or `ping`) before `join` succeeded.
    NotJoined,
    /// A second `join` on a socket that already joined.
    AlreadyJoined,
    /// The client speaks a protocol version this server does not.
    UnsupportedVersion,
    /// No session with this id exists (or it has ended).
    UnknownSession,
    /// The SDP could not be parsed or applied.
    InvalidSdp,
    /// An ICE candidate could not be parsed or applied.
    InvalidCandidate,
    /// An answer arrived when no offer was outstanding.
    UnexpectedAnswer,
    /// The socket sent nothing (not even a pong) for too long.
    IdleTimeout,
    /// The socket did not send `join` in time after connecting.
    JoinTimeout,
    /// The client cannot keep up with the events the server sends it.
    TooSlow,
    /// A request body or field is invalid (HTTP).
    InvalidRequest,
    /// No such resource (HTTP).
    NotFound,
    /// The server is shutting down.
    ShuttingDown,
    /// A failure inside the server; details are in the server log, never on the wire.
    Internal,
    /// Your role may not do this (in this session shape).
    Forbidden,
    /// No such participant in this session.
    UnknownParticipant,
    /// The link's key is missing, forged, rotated, revoked or expired.
    InvalidLink,
    /// The session has ended.
    SessionEnded,
    /// The session is locked: no new joins.
    SessionLocked,
    /// The session is at its participant limit.
    SessionFull,
    /// A host removed you from this session.
    Removed,
    /// A host turned you away from the waiting room.
    Declined,
    /// Too many messages too fast; slow down.
    RateLimited,
    /// Too many connections from your address (HTTP 429).
    TooManyConnections,
    /// The API key is missing or wrong (HTTP 401).
    Unauthorized,
    /// Recording cannot be started here: the server has no recording directory, or the disk
    /// refused the first write.
    RecordingUnavailable,
    /// No such recording, or not one this key may see (HTTP 404).
    UnknownRecording,
    /// The recording is still being made; stop it first (HTTP 409).
    RecordingInProgress,
    /// Export needs ffmpeg, which this server does not have (HTTP 503).
    ExportUnavailable,
    /// Another export is running; try again when it is done (HTTP 409).
    ExportBusy,
    /// The participant on this socket resumed on a newer connection (the same page
    /// reconnected before this socket was noticed to be dead).
    Replaced,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownType => "unknown_type",
            Self::BadMessage => "bad_message",
            Self::MessageTooLarge => "message_too_large",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownSession => "unknown_session",
            Self::InvalidSdp => "invalid_sdp",
            Self::InvalidCandidate => "invalid_candidate",
            Self::UnexpectedAnswer => "unexpected_answer",
            Self::IdleTimeout => "idle_timeout",
            Self::JoinTimeout => "join_timeout",
            Self::TooSlow => "too_slow",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::ShuttingDown => "shutting_down",
            Self::Internal => "internal",
            Self::Forbidden => "forbidden",
            Self::UnknownParticipant => "unknown_participant",
            Self::InvalidLink => "invalid_link",
            Self::SessionEnded => "session_ended",
            Self::SessionLocked => "session_locked",
            Self::SessionFull => "session_full",
            Self::Removed => "removed",
            Self::Declined => "declined",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::Unauthorized => "unauthorized",
            Self::RecordingUnavailable => "recording_unavailable",
            Self::UnknownRecording => "unknown_recording",
            Self::RecordingInProgress => "recording_in_progress",
            Self::ExportUnavailable => "export_unavailable",
            Self::ExportBusy => "export_busy",
            Self::Replaced => "replaced",
        }
    }

    /// Whether the server closes the WebSocket after sending this error. Errors caused by a
    /// single bad message are survivable; errors that mean the client is broken, hostile or gone
    /// end the connection.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::MessageTooLarge
                | Self::BinaryNotSupported
                | Self::UnsupportedVersion
                | Self::UnknownSession
                | Self::IdleTimeout
                | Self::JoinTimeout
                | Self::TooSlow
                | Self::ShuttingDown
                | Self::Internal
                | Self::InvalidLink
                | Self::SessionEnded
                | Self::SessionLocked
                | Self::SessionFull
                | Self::Removed
                | Self::Declined
                | Self::Replaced
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_as_str() {
        for code in [
            ErrorCode::BadJson,
            ErrorCode::UnknownType,
            ErrorCode::BadMessage,
            ErrorCode::MessageTooLarge,
            ErrorCode::BinaryNotSupported,
            ErrorCode::NotJoined,
            ErrorCode::AlreadyJoined,
            ErrorCode::UnsupportedVersion,
            ErrorCode::UnknownSession,
            ErrorCode::InvalidSdp,
            ErrorCode::InvalidCandidate,
            ErrorCode::UnexpectedAnswer,
            ErrorCode::IdleTimeout,
            ErrorCode::JoinTimeout,
            ErrorCode::TooSlow,
            ErrorCode::InvalidRequest,
            ErrorCode::NotFound,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
            ErrorCode::Forbidden,
            ErrorCode::UnknownParticipant,
            ErrorCode::InvalidLink,
            ErrorCode::SessionEnded,
            ErrorCode::SessionLocked,
            ErrorCode::SessionFull,
            ErrorCode::Removed,
            ErrorCode::Declined,
            ErrorCode::RateLimited,
            ErrorCode::TooManyConnections,
            ErrorCode::Unauthorized,
            ErrorCode::RecordingUnavailable,
            ErrorCode::UnknownRecording,
            ErrorCode::RecordingInProgress,
            ErrorCode::ExportUnavailable,
            ErrorCode::ExportBusy,
            ErrorCode::Replaced,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
