//! Typed identifiers. Each crosses module and process boundaries, so each gets its own type:
//! a `ParticipantId` can never be passed where a `TrackId` is expected. On the wire they are
//! plain strings.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id (UUID v4, simple form: 32 lowercase hex digits).
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4().simple().to_string())
            }

            /// Wraps an id received from outside. Nothing is checked here: an id that names
            /// nothing is simply not found.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// Identifies a session (a room) for its whole life.
    SessionId
);
string_id!(
    /// Identifies one participant's presence in a session; a re-join is a new participant.
    ParticipantId
);
string_id!(
    /// Identifies one published media track (one audio or video source of one participant).
    TrackId
);
string_id!(
    /// Identifies one recording of a session (also the name of its directory on disk, which
    /// is why the server only accepts ids of 32 lowercase hex digits from outside).
    RecordingId
);

impl RecordingId {
    /// The id, if `s` has the form of one (32 lowercase hex digits). Anything else, such as a
    /// path, never names a recording.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id = ParticipantId::from_string("abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"abc\"");
        let back: ParticipantId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn only_hex_strings_parse_as_recording_ids() {
        let good = RecordingId::random();
        assert_eq!(RecordingId::parse(good.as_str()), Some(good));
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "%2e%2e%2f",
            "/abs",
            "0123456789abcdef0123456789ABCDEF",
            "0123456789abcdef0123456789abcdef0",
        ] {
            assert_eq!(RecordingId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_ids_differ_and_are_hex() {
        let a = TrackId::random();
        let b = TrackId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
