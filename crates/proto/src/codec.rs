//! Turning text frames into messages and back, with the error a client deserves for each way a
//! frame can be wrong.

use crate::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, MAX_SERVER_MESSAGE_BYTES, ServerMessage};
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
    "track_view",
    "ice_restart",
    "ping",
    "leave",
    "chat",
    "raise_hand",
    "mute_participant",
    "remove_participant",
    "set_role",
    "update_settings",
    "rotate_invite",
    "admit",
    "decline",
    "end_session",
    "start_recording",
    "stop_recording",
];

const SERVER_TYPES: &[&str] = &[
    "joined",
    "participant_joined",
    "participant_updated",
    "participant_left",
    "simulcast_layers",
    "track_published",
    "track_unpublished",
    "publish_answer",
    "subscribe_offer",
    "candidate",
    "pong",
    "error",
    "waiting",
    "chat",
    "settings_updated",
    "waiting_updated",
    "invite_rotated",
    "muted_by_host",
    "recording_updated",
    "active_speaker",
    "audience",
];

/// Decodes a frame from a client, classifying failures as `message_too_large`, `bad_json`,
/// `unknown_type` or `bad_message`.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    decode(text, CLIENT_TYPES, MAX_MESSAGE_BYTES)
}

/// Decodes a frame from the server (used by the headless client).
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    decode(text, SERVER_TYPES, MAX_SERVER_MESSAGE_BYTES)
}

fn decode<T: DeserializeOwned>(text: &str, known: &[&str], limit: usize) -> Result<T, DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::new(
            ErrorCode::MessageTooLarge,
            format!("message is {} bytes; the limit is {limit}", text.len()),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    // serde_json keeps the last of duplicate keys; a message that says two things at once
    // (`"text":"hi","text":"bye"`, or two `type`s) is refused, not half-believed.
    if let Some(key) = duplicate_key(text) {
        let shown: String = key.chars().take(40).collect();
        return Err(DecodeError::new(
            ErrorCode::BadJson,
            format!("duplicate key `{shown}`"),
        ));
    }
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

/// The first key that appears twice in one JSON object anywhere in `text`, if any. `text` is
/// known to be valid JSON when this is called.
fn duplicate_key(text: &str) -> Option<String> {
    use serde::de::{
        self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use std::collections::HashSet;

    /// Walks any JSON value, recording the first duplicate key into `found`.
    struct Walk<'a>(&'a mut Option<String>);

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk(&mut *self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.0.is_none() && !seen.insert(key.clone()) {
                    *self.0 = Some(key);
                }
                if self.0.is_some() {
                    map.next_value::<IgnoredAny>()?;
                } else {
                    map.next_value_seed(Walk(&mut *self.0))?;
                }
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(text);
    Walk(&mut found).deserialize(&mut de).ok()?;
    found
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

    /// One of every client message. The match below stops compiling when a message is added,
    /// pointing here: the new message needs a sample, and its type a place in `CLIENT_TYPES`
    /// (or the server refuses it as `unknown_type`).
    fn every_client_message() -> Vec<ClientMessage> {
        let p = ParticipantId::from_string("p");
        let samples = vec![
            ClientMessage::Join {
                version: 1,
                session_id: SessionId::from_string("s"),
                name: "Ada".into(),
                host_key: None,
                invite_key: Some("k".into()),
                resume_token: None,
                resume: None,
            },
            ClientMessage::PublishOffer {
                sdp: "v=0".into(),
                sources: Default::default(),
            },
            ClientMessage::SubscribeAnswer { sdp: "v=0".into() },
            ClientMessage::Candidate {
                target: PcTarget::Publish,
                candidate: IceCandidate {
                    candidate: String::new(),
                    sdp_mid: None,
                    sdp_mline_index: None,
                    username_fragment: None,
                },
            },
            ClientMessage::Mute {
                kind: crate::MediaKind::Audio,
                muted: true,
            },
            ClientMessage::TrackView {
                track_id: crate::TrackId::from_string("t1"),
                width: 640,
                height: 360,
            },
            ClientMessage::IceRestart {
                target: crate::PcTarget::Subscribe,
            },
            ClientMessage::Ping { nonce: 1 },
            ClientMessage::Leave,
            ClientMessage::Chat { text: "hi".into() },
            ClientMessage::RaiseHand { raised: true },
            ClientMessage::MuteParticipant {
                participant_id: p.clone(),
                kind: crate::MediaKind::Video,
            },
            ClientMessage::RemoveParticipant {
                participant_id: p.clone(),
            },
            ClientMessage::SetRole {
                participant_id: p.clone(),
                role: crate::Role::Speaker,
            },
            ClientMessage::UpdateSettings {
                change: crate::SettingsChange::default(),
            },
            ClientMessage::RotateInvite,
            ClientMessage::Admit {
                participant_id: p.clone(),
            },
            ClientMessage::Decline { participant_id: p },
            ClientMessage::EndSession,
            ClientMessage::StartRecording,
            ClientMessage::StopRecording,
        ];
        for sample in &samples {
            match sample {
                ClientMessage::Join { .. }
                | ClientMessage::PublishOffer { .. }
                | ClientMessage::SubscribeAnswer { .. }
                | ClientMessage::Candidate { .. }
                | ClientMessage::Mute { .. }
                | ClientMessage::TrackView { .. }
                | ClientMessage::IceRestart { .. }
                | ClientMessage::Ping { .. }
                | ClientMessage::Leave
                | ClientMessage::Chat { .. }
                | ClientMessage::RaiseHand { .. }
                | ClientMessage::MuteParticipant { .. }
                | ClientMessage::RemoveParticipant { .. }
                | ClientMessage::SetRole { .. }
                | ClientMessage::UpdateSettings { .. }
                | ClientMessage::RotateInvite
                | ClientMessage::Admit { .. }
                | ClientMessage::Decline { .. }
                | ClientMessage::EndSession
                | ClientMessage::StartRecording
                | ClientMessage::StopRecording => {}
            }
        }
        samples
    }

    #[test]
    fn every_client_message_is_accepted_and_the_type_list_has_nothing_else() {
        let mut types = Vec::new();
        for message in every_client_message() {
            let text = encode(&message);
            assert_eq!(decode_client(&text).unwrap(), message, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            types.push(v["type"].as_str().unwrap().to_owned());
        }
        types.sort();
        let mut listed: Vec<String> = CLIENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
        listed.sort();
        assert_eq!(types, listed);
    }

    #[test]
    fn the_client_understands_recording_updates() {
        let text = r#"{"type":"recording_updated","recording":null,"error":"the disk is full"}"#;
        assert!(matches!(
            decode_server(text).unwrap(),
            ServerMessage::RecordingUpdated {
                recording: None,
                error: Some(_)
            }
        ));
    }

    #[test]
    fn join_round_trips() {
        let msg = ClientMessage::Join {
            version: 1,
            session_id: SessionId::from_string("s1"),
            name: "Ada".into(),
            host_key: None,
            invite_key: Some("k".into()),
            resume_token: None,
            resume: None,
        };
        let text = encode(&msg);
        assert_eq!(
            text,
            r#"{"type":"join","version":1,"session_id":"s1","name":"Ada","invite_key":"k"}"#
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
    fn duplicate_keys_are_refused_at_any_depth() {
        let err = decode_client(r#"{"type":"chat","text":"hi","text":"bye"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadJson);
        assert!(err.message.contains("text"), "{}", err.message);
        let err = decode_client(r#"{"type":"ping","type":"leave"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadJson);
        let nested = r#"{"type":"candidate","target":"publish","candidate":{"candidate":"a","candidate":"b"}}"#;
        assert_eq!(decode_client(nested).unwrap_err().code, ErrorCode::BadJson);
        // The same key in sibling objects is fine.
        let ok = r#"{"type":"update_settings","change":{"locked":true}}"#;
        assert!(decode_client(ok).is_ok());
    }

    #[test]
    fn a_spoofed_sender_field_is_refused() {
        let err =
            decode_client(r#"{"type":"chat","text":"hi","from":"someone-else"}"#).unwrap_err();
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
    fn a_large_session_welcome_still_decodes() {
        // A `joined` for a session of hundreds is far over the client limit; clients accept it.
        let participants: Vec<String> = (0..600)
            .map(|i| format!(r#"{{"id":"p{i:030}","name":"Viewer number {i}","role":"attendee","audio_muted":false,"video_muted":false,"hand_raised":false}}"#))
            .collect();
        let text = format!(
            r#"{{"type":"joined","version":1,"participant_id":"me","role":"attendee","session":{{"id":"s","title":"t"}},"participants":[{}],"tracks":[],"settings":{{"shape":"stage","locked":false,"waiting_room":false,"max_participants":1000}},"chat":[],"resume_token":"r"}}"#,
            participants.join(",")
        );
        assert!(text.len() > MAX_MESSAGE_BYTES);
        assert!(matches!(
            decode_server(&text),
            Ok(ServerMessage::Joined { .. })
        ));
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
        let speakers = ServerMessage::ActiveSpeaker {
            participant_id: Some(ParticipantId::from_string("p1")),
            speaking: vec![ParticipantId::from_string("p1")],
        };
        let text = encode(&speakers);
        assert_eq!(
            text,
            r#"{"type":"active_speaker","participant_id":"p1","speaking":["p1"]}"#
        );
        assert_eq!(decode_server(&text).unwrap(), speakers);
        let err = ServerMessage::error(ErrorCode::NotJoined, "join first");
        assert_eq!(
            encode(&err),
            r#"{"type":"error","code":"not_joined","message":"join first"}"#
        );
    }
}
