//! Peer connections of the headless client: media engine, interceptors, and the event handler.

use hearth_proto::{ClientMessage, IceCandidate, PcTarget};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{RTCBundlePolicy, RTCConfigurationBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

use crate::codec::{CLIENT_PT_OPUS, VideoCodec, opus};
use crate::state::{RemoteTracks, Shared, lock_tracks, record_track};

pub(crate) struct Handler {
    pub(crate) target: PcTarget,
    pub(crate) outbox: mpsc::Sender<ClientMessage>,
    pub(crate) state: Shared,
    pub(crate) remote_tracks: Option<RemoteTracks>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.outbox.try_send(ClientMessage::Candidate {
                target: self.target,
                candidate: IceCandidate {
                    candidate: init.candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                },
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(target_pc = ?self.target, %state, "client connection state");
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(remote_tracks) = &self.remote_tracks else {
            return;
        };
        let id = track.track_id().await.to_string();
        lock_tracks(remote_tracks).insert(id, Arc::clone(&track));
        let state = Arc::clone(&self.state);
        tokio::spawn(record_track(track, state));
    }
}

/// Opus, VP8 and H.264, like a browser: every participant can receive either video codec
/// whatever it publishes itself, which is what lets one room mix them.
pub(crate) fn engine() -> Result<MediaEngine, String> {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: CLIENT_PT_OPUS,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    for video in [VideoCodec::Vp8, VideoCodec::H264] {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        rtcp_feedback: video_feedback(),
                        ..video.rtp_codec()
                    },
                    payload_type: video.payload_type(),
                },
                RtpCodecKind::Video,
            )
            .map_err(|e| e.to_string())?;
    }
    // Like a browser, the client marks its audio packets with their level (RFC 6464).
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

/// The RFC 6464 audio level header extension.
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// NACK for loss and PLI for keyframe requests, so the client both asks for and answers them.
fn video_feedback() -> Vec<RTCPFeedback> {
    [("nack", ""), ("nack", "pli")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.into(),
            parameter: parameter.into(),
        })
        .collect()
}

pub(crate) async fn build_pc(
    bind_ip: IpAddr,
    handler: Handler,
) -> Result<Arc<dyn PeerConnection>, String> {
    let mut engine = engine()?;
    // The same tap as the server's, so the publisher sees the keyframe requests the SFU relays.
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(|e| e.to_string())?
        .with(Slot::from(14_000), hearth_media::RtcpTap::default());
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        // When the server's connectivity check arrives before its trickled candidate (the usual
        // order on loopback), the pair is peer-reflexive, and webrtc-rs waits a full second
        // before nominating one. Browsers do not, so neither does a client that stands in for
        // them: the load tool's join times must be the server's, not this client's.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .build();
    let runtime = default_runtime().ok_or("webrtc built without a runtime")?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_bundle_policy(RTCBundlePolicy::MaxBundle)
                .build(),
        )
        .with_media_engine(engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_runtime(runtime)
        .with_udp_addrs(vec![SocketAddr::new(bind_ip, 0)])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(pc))
}
