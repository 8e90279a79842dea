//! The codecs Hearth negotiates, with fixed payload types. The server offers on every subscribe
//! connection, so these numbers are the ones subscribers see; publishers' numbers come from
//! their own offers and are rewritten per subscriber.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

/// Payload type of Opus on subscribe connections.
pub const PT_OPUS: u8 = 111;
/// Payload type of VP8 on subscribe connections.
pub const PT_VP8: u8 = 96;
/// Payload type of H.264 on subscribe connections.
pub const PT_H264: u8 = 102;

fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli"), ("ccm", "fir")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.into(),
            parameter: parameter.into(),
        })
        .collect()
}

/// The codec Hearth uses for `mime`, as offered to subscribers, or `None` if Hearth does not
/// forward it.
pub fn codec_for(mime: &str) -> Option<(RTCRtpCodec, u8)> {
    all()
        .into_iter()
        .find(|(c, _, _)| c.mime_type.eq_ignore_ascii_case(mime))
        .map(|(c, pt, _)| (c, pt))
}

/// Every codec of the same kind as `mime`, `mime`'s own first: what a subscribe transceiver
/// carrying a `mime` track offers.
///
/// Offering only the track's codec is not enough with webrtc-rs 0.21: a connection takes its
/// video codecs from the first video m-section of the first description that has one, and
/// never widens the set afterwards (its multi-codec negotiation cannot be switched on). A
/// subscriber whose first video track was VP8 could then never be sent H.264, nor the other way
/// round, and a transceiver reused after a track was removed keeps the old track's codec. Listing
/// every codec in every m-section keeps mixed-codec rooms working; the track's codec goes first
/// as the preferred one, and the SFU sends its payload type explicitly anyway.
pub fn offer_order(mime: &str) -> Vec<RTCRtpCodecParameters> {
    let all = all();
    let Some((_, _, kind)) = all
        .iter()
        .find(|(c, _, _)| c.mime_type.eq_ignore_ascii_case(mime))
    else {
        return vec![];
    };
    let kind = *kind;
    let mut same_kind: Vec<RTCRtpCodecParameters> = all
        .into_iter()
        .filter(|(_, _, k)| *k == kind)
        .map(|(rtp_codec, payload_type, _)| RTCRtpCodecParameters {
            rtp_codec,
            payload_type,
        })
        .collect();
    same_kind.sort_by_key(|c| !c.rtp_codec.mime_type.eq_ignore_ascii_case(mime));
    same_kind
}

fn all() -> Vec<(RTCRtpCodec, u8, RtpCodecKind)> {
    vec![
        (
            RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.into(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                rtcp_feedback: vec![],
            },
            PT_OPUS,
            RtpCodecKind::Audio,
        ),
        (
            RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: video_feedback(),
            },
            PT_VP8,
            RtpCodecKind::Video,
        ),
        (
            RTCRtpCodec {
                mime_type: MIME_TYPE_H264.into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line:
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into(),
                rtcp_feedback: video_feedback(),
            },
            PT_H264,
            RtpCodecKind::Video,
        ),
    ]
}

/// A media engine with Opus, VP8 and H.264 and no RTX: with `video/rtx` negotiated, webrtc-rs
/// 0.21 answered 5% loss with a retransmission storm (2-4x upstream traffic). Plain NACK on the
/// media SSRC is enough and bounded.
pub fn media_engine() -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    for (codec, payload_type, kind) in all() {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type,
            },
            kind,
        )?;
    }
    // Publishers mark each audio packet with its loudness; the room's speaker detection reads
    // it. Only received: subscribers get fresh headers, and their browsers measure levels
    // from the decoded audio themselves.
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        Some(RTCRtpTransceiverDirection::Recvonly),
    )?;
    // webrtc-rs registers the MID extension for video only (with the simulcast ones). A browser
    // whose audio section had it refused while a simulcast video section accepted it later
    // offers a new video section with another extension on the MID's id, and fails its own
    // setLocalDescription ("RTP extension ID reassignment not supported"): then nobody can go
    // on stage twice. Accepting it everywhere, as BUNDLE means it to be, keeps ids consistent.
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: MID_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    Ok(engine)
}

/// The RFC 8843 MID header extension.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The RFC 6464 audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_track_offers_every_video_codec_its_own_first() {
        let order =
            |mime| -> Vec<u8> { offer_order(mime).iter().map(|c| c.payload_type).collect() };
        assert_eq!(order("video/H264"), vec![PT_H264, PT_VP8]);
        assert_eq!(order("video/vp8"), vec![PT_VP8, PT_H264]);
        assert_eq!(order("audio/opus"), vec![PT_OPUS]);
        assert!(order("video/AV1").is_empty());
    }
}
