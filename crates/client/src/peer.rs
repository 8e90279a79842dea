//! Peer connections of the headless client: codecs, interceptors, and the event handler.

//! A headless participant: one signaling socket, a publish and a subscribe peer connection,
//! synthetic media out, recorded media in.

use hearth_proto::{ClientMessage, IceCandidate, PcTarget};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{RTCBundlePolicy, RTCConfigurationBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

use crate::state::{RemoteTracks, Shared, lock_tracks, record_track};

/// Payload types the headless client registers. Deliberately not the server's (111/96), so
/// tests prove the SFU rewrites payload types per subscriber.
pub(crate) const CLIENT_PT_OPUS: u8 = 109;
pub(crate) const CLIENT_PT_VP8: u8 = 98;

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

pub(crate) fn engine() -> Result<MediaEngine, String> {
    let mut engine = MediaEngine::default();
    let feedback = vec![
        RTCPFeedback {
            typ: "nack".into(),
            parameter: String::new(),
        },
        RTCPFeedback {
            typ: "nack".into(),
            parameter: "pli".into(),
        },
    ];
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: CLIENT_PT_OPUS,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    rtcp_feedback: feedback,
                    ..vp8()
                },
                payload_type: CLIENT_PT_VP8,
            },
            RtpCodecKind::Video,
        )
        .map_err(|e| e.to_string())?;
    Ok(engine)
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

pub(crate) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

pub(crate) async fn build_pc(
    bind_ip: IpAddr,
    handler: Handler,
) -> Result<Arc<dyn PeerConnection>, String> {
    let mut engine = engine()?;
    // The same tap as the server's, so the publisher sees the keyframe requests the SFU relays.
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(|e| e.to_string())?
        .with(
            Slot::from(14_000),
            hearth_media::KeyframeRequestTap::default(),
        );
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
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
