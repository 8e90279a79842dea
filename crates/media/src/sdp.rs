//! Just enough SDP reading to know what a publisher's offer sends: which media sections are
//! active and which MediaStreamTrack each carries. webrtc-rs does not tell the application when
//! a remote track stops (a transceiver turned inactive or rejected), so Hearth reads the offer.

/// One media section of an offer, as far as sending is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSection {
    /// The section's `mid`.
    pub mid: Option<String>,
    /// The MediaStreamTrack id from `a=msid:<stream> <track>`, if any.
    pub track_id: Option<String>,
}

/// The media sections of `sdp` that send (direction `sendrecv` or `sendonly`, port not 0),
/// ignoring data channels.
pub fn sending_sections(sdp: &str) -> Vec<SentSection> {
    let mut out = Vec::new();
    for section in sdp.split("\nm=").skip(1) {
        let mut lines = section.lines();
        let Some(media) = lines.next() else { continue };
        let mut fields = media.split_whitespace();
        let kind = fields.next().unwrap_or_default();
        let port = fields.next().unwrap_or("0");
        if kind == "application" || port == "0" {
            continue;
        }
        // The default direction, when none is written, is sendrecv (RFC 8866).
        let mut sends = true;
        let mut mid = None;
        let mut track_id = None;
        for line in lines {
            let line = line.trim_end();
            match line {
                "a=recvonly" | "a=inactive" => sends = false,
                "a=sendonly" | "a=sendrecv" => sends = true,
                _ => {
                    if let Some(m) = line.strip_prefix("a=mid:") {
                        mid = Some(m.to_owned());
                    } else if let Some(msid) = line.strip_prefix("a=msid:") {
                        track_id = msid.split_whitespace().nth(1).map(str::to_owned);
                    }
                }
            }
        }
        if sends {
            out.push(SentSection { mid, track_id });
        }
    }
    out
}

/// The id `sdp` gives the RTP header extension `uri` (`a=extmap:<id>[/<direction>] <uri>`), in
/// the first media section that maps it. Browsers use one id per extension across a bundle.
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, rest) = rest.split_once(' ')?;
        let found = rest.split_whitespace().next()?;
        if found != uri {
            return None;
        }
        let id = id.split('/').next()?.parse::<u8>().ok()?;
        // One-byte header ids are 1..=14; two-byte ones go to 255. 0 is never an id.
        (id != 0).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=msid:s mic-1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\na=msid:s old-screen\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=msid:s cam-2\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";

    #[test]
    fn finds_the_sections_that_send_and_their_tracks() {
        let sent = sending_sections(OFFER);
        assert_eq!(
            sent,
            [
                SentSection {
                    mid: Some("0".into()),
                    track_id: Some("mic-1".into())
                },
                // No direction attribute means sendrecv.
                SentSection {
                    mid: Some("3".into()),
                    track_id: Some("cam-2".into())
                },
            ]
        );
    }

    #[test]
    fn garbage_sends_nothing() {
        assert!(sending_sections("not sdp at all").is_empty());
        assert!(sending_sections("").is_empty());
    }

    #[test]
    fn extension_ids_are_read_from_the_extmap_lines() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        let level = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
        assert_eq!(extmap_id(sdp, level), Some(1));
        assert_eq!(
            extmap_id(sdp, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            Some(4)
        );
        assert_eq!(extmap_id(sdp, "urn:example:absent"), None);
        assert_eq!(
            extmap_id("a=extmap:x urn:x\r\na=extmap:0 urn:x", "urn:x"),
            None
        );
    }
}
