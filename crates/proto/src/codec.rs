//! Turning text frames into messages and back, with the error a client deserves for each way a
//! frame can be wrong.

use crate::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, ServerMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a frame could not be decoded. Carries the stable code and a message safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A human-readable explanation (no input echoed back beyond the type name).
    pub message: String,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

const CLIENT_TYPES: &[&str] = &[
    "join",
    "publish_offer",
    "subscribe_answer",
    "candidate",
    "mute",
    "ping",
    "leave",
];

const SERVER_TYPES: &[&str] = &[
    "joined",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "track_published",
    "track_unpublished",
    "publish_answer",
    "subscribe_offer",
    "candidate",
    "pong",
    "error",
];

/// Decodes a frame from a client, classifying failures as `message_too_large`, `bad_json`,
/// `unknown_type` or `bad_message`.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    decode(text, CLIENT_TYPES)
}

/// Decodes a frame from the server (used by the headless client).
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    decode(text, SERVER_TYPES)
}

fn decode<T: DeserializeOwned>(text: &str, known: &[&str]) -> Result<T, DecodeError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                text.len()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(DecodeError::new(
            ErrorCode::BadJson,
            "a message must be a JSON object",
        ));
    };
    let ty = match object.get("type") {
        Some(serde_json::Value::String(ty)) => ty.as_str(),
        Some(_) => {
            return Err(DecodeError::new(
                ErrorCode::UnknownType,
                "`type` must be a string",
            ));
        }
        None => {
            return Err(DecodeError::new(
                ErrorCode::UnknownType,
                "missing `type` field",
            ));
        }
    };
    if !known.contains(&ty) {
        // Truncate what we echo: the type came from the network.
        let shown: String = ty.chars().take(40).collect();
        return Err(DecodeError::new(
            ErrorCode::UnknownType,
            format!("unknown message type `{shown}`"),
        ));
    }
    let ty = ty.to_owned();
    serde_json::from_value(value)
        .map_err(|e| DecodeError::new(ErrorCode::BadMessage, format!("invalid `{ty}`: {e}")))
}

/// Encodes a message as a JSON text frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serializing these plain data types cannot fail: no maps with non-string keys, no
    // custom serializers that error.
    serde_json::to_string(message).expect("protocol messages always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IceCandidate, ParticipantId, PcTarget, SessionId};

    #[test]
    fn join_round_trips() {
        let msg = ClientMessage::Join {
            version: 1,
            session_id: SessionId::from_string("s1"),
            name: "Ada".into(),
            host_key: None,
        };
        let text = encode(&msg);
        assert_eq!(
            text,
            r#"{"type":"join","version":1,"session_id":"s1","name":"Ada"}"#
        );
        assert_eq!(decode_client(&text).unwrap(), msg);
    }

    #[test]
    fn candidate_uses_browser_field_names() {
        let text = r#"{"type":"candidate","target":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
        let msg = decode_client(text).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Candidate {
                target: PcTarget::Publish,
                candidate: IceCandidate {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                }
            }
        );
    }

    #[test]
    fn malformed_json_is_bad_json() {
        assert_eq!(
            decode_client("{not json").unwrap_err().code,
            ErrorCode::BadJson
        );
        assert_eq!(decode_client("[1,2]").unwrap_err().code, ErrorCode::BadJson);
        assert_eq!(
            decode_client("\"join\"").unwrap_err().code,
            ErrorCode::BadJson
        );
    }

    #[test]
    fn unknown_or_missing_type_is_unknown_type() {
        assert_eq!(
            decode_client(r#"{"type":"fly"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        assert_eq!(
            decode_client(r#"{"name":"x"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        assert_eq!(
            decode_client(r#"{"type":7}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
        // A server-only type sent by a client is unknown to the server.
        assert_eq!(
            decode_client(r#"{"type":"joined"}"#).unwrap_err().code,
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn known_type_with_bad_fields_is_bad_message() {
        let err = decode_client(r#"{"type":"join","version":"one"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage);
        let err = decode_client(r#"{"type":"mute","kind":"smell","muted":true}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage);
        let err = decode_client(r#"{"type":"mute","kind":"audio"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadMessage);
    }

    #[test]
    fn oversize_is_rejected_before_parsing() {
        let big = format!(
            r#"{{"type":"publish_offer","sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            decode_client(&big).unwrap_err().code,
            ErrorCode::MessageTooLarge
        );
    }

    #[test]
    fn unknown_type_is_not_echoed_at_length() {
        let long = "x".repeat(10_000);
        let err = decode_client(&format!(r#"{{"type":"{long}"}}"#)).unwrap_err();
        assert!(err.message.len() < 100, "{}", err.message);
    }

    #[test]
    fn server_messages_round_trip() {
        let msg = ServerMessage::ParticipantLeft {
            participant_id: ParticipantId::from_string("p1"),
        };
        let text = encode(&msg);
        assert_eq!(text, r#"{"type":"participant_left","participant_id":"p1"}"#);
        assert_eq!(decode_server(&text).unwrap(), msg);
        let err = ServerMessage::error(ErrorCode::NotJoined, "join first");
        assert_eq!(
            encode(&err),
            r#"{"type":"error","code":"not_joined","message":"join first"}"#
        );
    }
}
