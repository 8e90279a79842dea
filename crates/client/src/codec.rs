//! The codecs the headless client speaks, and the payload types it gives them.
//!
//! The payload types are deliberately not the server's (Opus 111, VP8 96, H.264 102): the client
//! offers on its publish connection, so its numbers are what the SFU receives, and a subscriber
//! seeing the server's numbers proves the SFU rewrites payload types per subscriber.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

/// Opus on the client's publish connection.
pub(crate) const CLIENT_PT_OPUS: u8 = 109;
/// VP8 on the client's publish connection.
pub(crate) const CLIENT_PT_VP8: u8 = 98;
/// H.264 on the client's publish connection.
pub(crate) const CLIENT_PT_H264: u8 = 100;

/// The only H.264 flavour Hearth forwards: constrained baseline 3.1, packetization mode 1, the
/// profile every browser can both send and decode. Must equal the server's, or webrtc-rs drops
/// H.264 from the answer (it matches H.264 on profile and packetization mode).
pub(crate) const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

/// Which codec a participant publishes its video in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    /// VP8 (RFC 7741): what every browser offers first.
    #[default]
    Vp8,
    /// H.264 constrained baseline, packetization mode 1 (RFC 6184): what Safari and hardware
    /// encoders prefer.
    H264,
}

impl VideoCodec {
    /// The codec's MIME type, as the server announces it in `TrackInfo.codec`.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Vp8 => MIME_TYPE_VP8,
            Self::H264 => MIME_TYPE_H264,
        }
    }

    /// The codec for a negotiated MIME type (case-insensitive, as SDP is); `None` for audio or a
    /// codec the client does not speak.
    pub fn from_mime(mime: &str) -> Option<Self> {
        [Self::Vp8, Self::H264]
            .into_iter()
            .find(|c| c.mime_type().eq_ignore_ascii_case(mime))
    }

    /// The payload type the client sends this codec with.
    pub(crate) fn payload_type(self) -> u8 {
        match self {
            Self::Vp8 => CLIENT_PT_VP8,
            Self::H264 => CLIENT_PT_H264,
        }
    }

    /// The codec description, without RTCP feedback (the media engine adds it).
    pub(crate) fn rtp_codec(self) -> RTCRtpCodec {
        let fmtp = match self {
            Self::Vp8 => "",
            Self::H264 => H264_FMTP,
        };
        RTCRtpCodec {
            mime_type: self.mime_type().into(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: vec![],
        }
    }
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_codecs_are_found_by_their_mime_type_in_any_case() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/h264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("audio/opus"), None);
        assert_ne!(
            VideoCodec::H264.payload_type(),
            102,
            "differs from the server's, so the rewrite is visible"
        );
    }
}
