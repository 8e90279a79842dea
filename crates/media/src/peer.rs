//! Building peer connections: codecs, interceptors, sockets, and the handler that turns
//! webrtc-rs callbacks into [`MediaEvent`]s for the connection's owner.

use crate::codecs;
use crate::config::MediaConfig;
use crate::congestion::TransportCc;
use crate::diversion::Diversions;
use crate::error::MediaError;
use crate::fanout::PublishedTrack;
use crate::interceptor::RtcpTap;
use crate::stats::MediaStats;
use hearth_proto::{IceCandidate, PcTarget, TrackId};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{
    Gcc, NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry,
    SenderReportBuilder, Slot, TwccReceiverBuilder,
};
use rtc::peer_connection::configuration::RTCBundlePolicy;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::runtime::{Runtime, default_runtime};

/// What a participant's connections report to the task that owns them.
#[derive(Debug)]
pub enum MediaEvent {
    /// A local ICE candidate to trickle to the client.
    Candidate {
        /// Which connection it belongs to.
        target: PcTarget,
        /// The candidate, with the advertised address already applied.
        candidate: IceCandidate,
    },
    /// The client started sending a track on its publish connection.
    TrackPublished(Arc<PublishedTrack>),
    /// A published track ended (the client removed it or its connection closed).
    TrackEnded(TrackId),
    /// A connection changed state.
    State {
        /// Which connection.
        target: PcTarget,
        /// Whether media can flow now.
        connected: bool,
        /// Whether the connection failed for good (ICE gave up, or it closed).
        failed: bool,
    },
}

/// Creates peer connections with Hearth's settings. One per server, shared by all participants.
pub struct PeerFactory {
    config: MediaConfig,
    runtime: Arc<dyn Runtime>,
    stats: Arc<MediaStats>,
    /// Where the next port search starts, so consecutive connections spread over the range
    /// instead of all probing the first ports.
    next_port: AtomicU32,
}

impl std::fmt::Debug for PeerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerFactory")
            .field("config", &self.config)
            .finish()
    }
}

/// Every participant's handler shares these.
#[derive(Clone)]
pub(crate) struct HandlerContext {
    pub target: PcTarget,
    pub events: mpsc::Sender<MediaEvent>,
    pub public_ip: Option<IpAddr>,
    pub connected: watch::Sender<bool>,
    pub on_track: Option<Arc<dyn TrackSink>>,
    /// Subscribe connections: where the bandwidth estimate toward the client goes.
    pub estimate: Option<Arc<AtomicU64>>,
    /// Publish connections: the simulcast streams read past webrtc-rs's routing.
    pub diversions: Option<Arc<Diversions>>,
}

/// Receives tracks from a publish connection.
#[async_trait::async_trait]
pub(crate) trait TrackSink: Send + Sync {
    async fn on_track(&self, track: Arc<dyn TrackRemote>);
}

struct Handler(HandlerContext);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(init) = event.candidate.to_json() else {
            return;
        };
        let candidate = IceCandidate {
            candidate: advertise(&init.candidate, self.0.public_ip),
            sdp_mid: init.sdp_mid,
            sdp_mline_index: init.sdp_mline_index,
            username_fragment: init.username_fragment,
        };
        // Never block the webrtc driver on the owner: a full queue means the owner is stuck, and
        // one lost candidate of several is survivable.
        if self
            .0
            .events
            .try_send(MediaEvent::Candidate {
                target: self.0.target,
                candidate,
            })
            .is_err()
        {
            tracing::warn!(target_pc = ?self.0.target, "event queue full; dropped a local ICE candidate");
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(target_pc = ?self.0.target, %state, "peer connection state");
        let connected = state == RTCPeerConnectionState::Connected;
        let failed = matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        );
        self.0.connected.send_replace(connected);
        let _ = self.0.events.try_send(MediaEvent::State {
            target: self.0.target,
            connected,
            failed,
        });
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        match &self.0.on_track {
            Some(sink) => sink.on_track(track).await,
            None => tracing::warn!(target_pc = ?self.0.target, "unexpected remote track"),
        }
    }
}

/// Replaces the connection address of a candidate line with `public_ip`. Only host candidates
/// carry the bound address; others are left alone.
pub(crate) fn advertise(candidate: &str, public_ip: Option<IpAddr>) -> String {
    let Some(ip) = public_ip else {
        return candidate.to_owned();
    };
    let mut fields: Vec<&str> = candidate.split(' ').collect();
    // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    let is_host = fields.windows(2).any(|w| w[0] == "typ" && w[1] == "host");
    if fields.len() < 8 || !is_host {
        return candidate.to_owned();
    }
    let ip = ip.to_string();
    fields[4] = &ip;
    fields.join(" ")
}

impl PeerFactory {
    /// A factory for `config`.
    pub fn new(config: MediaConfig) -> Result<Self, MediaError> {
        let runtime = default_runtime()
            .ok_or_else(|| MediaError::Webrtc("webrtc built without a runtime".into()))?;
        let start = config.ports.map(|r| u32::from(r.min)).unwrap_or(0);
        Ok(Self {
            config,
            runtime,
            stats: Arc::new(MediaStats::default()),
            next_port: AtomicU32::new(start),
        })
    }

    /// The counters of every connection made by this factory.
    pub fn stats(&self) -> &Arc<MediaStats> {
        &self.stats
    }

    /// Builds one connection, binding a port from the configured range.
    pub(crate) async fn build(
        &self,
        ctx: HandlerContext,
    ) -> Result<Arc<dyn PeerConnection>, MediaError> {
        let Some(range) = self.config.ports else {
            return self.build_on(ctx, 0).await;
        };
        let span = u32::from(range.max) - u32::from(range.min) + 1;
        let mut last_err = None;
        for _ in 0..span {
            let offset = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
            let port = u16::try_from(u32::from(range.min) + offset)
                .expect("range.max is a u16, so min + offset <= max fits");
            match self.build_on(ctx.clone(), port).await {
                Ok(pc) => return Ok(pc),
                Err(e) => last_err = Some(e),
            }
        }
        tracing::warn!(error = ?last_err, %range, "no free media port");
        Err(MediaError::NoPort(range.to_string()))
    }

    async fn build_on(
        &self,
        ctx: HandlerContext,
        port: u16,
    ) -> Result<Arc<dyn PeerConnection>, MediaError> {
        let (engine, registry) =
            connection_parts(ctx.target, ctx.estimate.clone(), ctx.diversions.clone())?;
        // Multicast DNS needs a multicast-capable interface, which containers and network
        // namespaces lack (build() then fails with ENODEV); Hearth advertises plain IPs anyway.
        // A browser's connectivity check often reaches the server before its trickled
        // candidate does, so the pair is peer-reflexive; webrtc-rs would wait a second before
        // accepting it, which was most of a viewer's join time (1.25 s -> 0.27 s, measured
        // with hearth-bench live/100). Browsers do not wait either.
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
            .with_ice_timeouts(
                Some(self.config.ice_disconnected),
                Some(self.config.ice_failed),
                None,
            )
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_bundle_policy(RTCBundlePolicy::MaxBundle)
            .build();
        let addr = SocketAddr::new(self.config.bind_ip, port);
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(engine)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler(ctx)))
            .with_runtime(Arc::clone(&self.runtime))
            .with_udp_addrs(vec![addr])
            .build()
            .await
            .map_err(|e| MediaError::Webrtc(e.to_string()))?;
        Ok(Arc::new(pc))
    }

    pub(crate) fn public_ip(&self) -> Option<IpAddr> {
        self.config.public_ip
    }

    pub(crate) fn stats_handle(&self) -> Arc<MediaStats> {
        Arc::clone(&self.stats)
    }
}

/// The codecs and interceptors of a connection in direction `target`: what the server's
/// connections run, and what `hearth-bench pipeline` measures. `estimate` receives a subscribe
/// connection's bandwidth estimate; `diversions` takes simulcast streams diverted by the RTCP
/// tap (both may be `None`).
pub fn connection_parts(
    target: PcTarget,
    estimate: Option<Arc<AtomicU64>>,
    diversions: Option<Arc<Diversions>>,
) -> Result<(MediaEngine, Registry), MediaError> {
    let mut engine = codecs::media_engine().map_err(|e| MediaError::Webrtc(e.to_string()))?;
    // The default set is registered for what it tells the media engine (NACK and PLI
    // feedback, the TWCC and simulcast header extensions); the interceptors themselves are
    // then chosen by what the connection does.
    register_default_interceptors(Registry::new(), &mut engine)
        .map_err(|e| MediaError::Webrtc(e.to_string()))?;
    Ok((engine, interceptors_for(target, estimate, diversions)))
}

/// How often the SFU asks a publisher for the same lost packet. At 100 ms between NACK rounds
/// that covers about 300 ms, longer than a browser's jitter buffer waits.
pub(crate) const MAX_NACKS_PER_PACKET: u16 = 3;

/// Where a subscriber's bandwidth estimate starts: enough for a mid layer at once, so a new
/// viewer does not sit on the smallest picture while the estimate climbs; a link that cannot
/// carry it shows loss within a second and the estimate falls.
pub(crate) const INITIAL_ESTIMATE: f64 = 1_000_000.0;

/// The interceptors a connection needs. Every interceptor sees every packet, so the ones with
/// nothing to do on a connection still cost a pass per packet: on a subscribe connection that
/// was the receive-side three, once per forwarded packet.
fn interceptors_for(
    target: PcTarget,
    estimate: Option<Arc<AtomicU64>>,
    diversions: Option<Arc<Diversions>>,
) -> Registry {
    let registry = match target {
        // Receives media: asks for lost packets, reports reception, and gives the browser the
        // transport-wide feedback its bandwidth estimate runs on.
        // A lost packet is asked for at most MAX_NACKS_PER_PACKET times (the default is
        // without limit): past that, the retransmission itself is likely lost on the same bad
        // path, or too late to be played, and asking again only adds upstream traffic.
        PcTarget::Publish => Registry::new()
            .with(
                Slot::NackGenerator,
                NackGeneratorBuilder::new()
                    .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                    .build(),
            )
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()),
        // Sends media: answers NACKs from its buffer and sends sender reports (a browser lines
        // up audio and video by them). Numbers every packet transport-wide and runs Google
        // congestion control on the client's transport feedback (crate::congestion): the
        // estimate that picks which simulcast layer this subscriber gets. No pacer: packets
        // are relayed as they come, and layer choice, not queueing, keeps the rate within the
        // estimate.
        PcTarget::Subscribe => Registry::new()
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build())
            .with(
                Slot::CongestionControl,
                TransportCc::new(
                    Gcc::new(
                        INITIAL_ESTIMATE,
                        rtc::interceptor::GCC_MIN_BITRATE,
                        50_000_000.0,
                    ),
                    estimate.unwrap_or_default(),
                ),
            ),
    };
    // Keyframe requests and sender reports reach Hearth through this one (and diverted
    // simulcast streams).
    registry.with(Slot::from(14_000), RtcpTap::new(diversions))
}

/// A fresh random SSRC for an outgoing stream.
pub(crate) fn random_ssrc() -> u32 {
    // Zero is legal but confuses some tools; avoid it.
    loop {
        let ssrc: u32 = rand::random();
        if ssrc != 0 {
            return ssrc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_gets_the_interceptors_for_its_direction() {
        let names = |target| -> Vec<String> {
            interceptors_for(target, None, None)
                .slots()
                .into_iter()
                .map(|(_, name)| name)
                .collect()
        };
        let publish = names(PcTarget::Publish);
        let subscribe = names(PcTarget::Subscribe);
        for wanted in ["NackGenerator", "ReceiverReport", "TwccReceiver", "RtcpTap"] {
            assert!(
                publish.iter().any(|n| n.contains(wanted)),
                "publish: {wanted} in {publish:?}"
            );
        }
        for wanted in ["NackResponder", "SenderReport", "TransportCc", "RtcpTap"] {
            assert!(
                subscribe.iter().any(|n| n.contains(wanted)),
                "subscribe: {wanted} in {subscribe:?}"
            );
        }
        assert_eq!(publish.len(), 4, "nothing else on publish: {publish:?}");
        assert_eq!(
            subscribe.len(),
            4,
            "nothing else on subscribe: {subscribe:?}"
        );
    }

    #[test]
    fn host_candidates_get_the_public_address() {
        let line = "candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host";
        assert_eq!(
            advertise(line, Some("203.0.113.7".parse().unwrap())),
            "candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host"
        );
        assert_eq!(advertise(line, None), line);
        let srflx =
            "candidate:2 1 udp 1694498815 198.51.100.1 40000 typ srflx raddr 10.0.0.5 rport 40000";
        assert_eq!(
            advertise(srflx, Some("203.0.113.7".parse().unwrap())),
            srflx
        );
        assert_eq!(
            advertise("garbage", Some("203.0.113.7".parse().unwrap())),
            "garbage"
        );
    }
}
