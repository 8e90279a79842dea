//! What webrtc-rs's sans-IO core (`rtc`) charges per forwarded packet, without its async layer:
//! subscribe connections built with the server's own codecs and interceptors
//! (`hearth_media::connection_parts`), each connected in memory to a viewer connection, then
//! fed 1200-byte VP8 packets in turn through `write_rtp` and drained with `poll_write`, on this
//! thread: the core alone, with a UDP send per datagram, and with the send going to a reader
//! that waits on another thread.
//!
//! The server pays this plus its async layer's driver around it (tasks, channels, timers,
//! wake-ups), receiving and RTCP. The gap between the server's measured µs per forwarded
//! packet and this number is what a Hearth-owned driver of the sans-IO core could at most
//! save; see docs/performance.md.

use crate::floor::{BATCH, drain, median};
use anyhow::{Context as _, bail};
use hearth_proto::PcTarget;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use serde::Serialize;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Payload bytes after the 12-byte RTP header: a full packet of a browser's VP8 packetizer.
const PAYLOAD_BYTES: usize = 1188;
/// How long connecting in memory may take: ICE and DTLS need a few round trips of no time.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// Subscribe connections at most: a live session's audience on one server, and enough.
pub const MAX_CONNECTIONS: usize = 2000;

/// Microseconds per forwarded packet, each the median of the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    /// Subscribe connections each packet was forwarded to.
    pub connections: usize,
    /// `write_rtp` and `poll_write`: interceptors (NACK responder's history, sender reports,
    /// transport-wide numbering and its send history, Hearth's RTCP tap), SRTP, framing.
    pub core_us: f64,
    /// The same, each datagram also sent on loopback: a single-threaded driver's cost per
    /// packet, before any epoll, timers or task switches.
    pub core_and_send_us: f64,
    /// Datagrams out per packet in (1 plus the occasional sender report).
    pub datagrams_per_packet: f64,
    /// Bytes on the wire per packet (SRTP's tag and the TWCC header extension included).
    pub bytes_per_packet: f64,
    /// Every run's `core_us`.
    pub core_runs: Vec<f64>,
    /// Every run's `core_and_send_us`.
    pub core_and_send_runs: Vec<f64>,
    /// The same, each connection sending to its own socket, read by a thread that waits for
    /// it (on the other core, when there is one): the send then also pays for waking the
    /// reader, as the server's sends to the load tool's sockets do.
    pub core_and_send_to_waiting_us: f64,
    /// Every run's `core_and_send_to_waiting_us`.
    pub core_and_send_to_waiting_runs: Vec<f64>,
    /// Of the datagrams sent to waiting sockets, the share the reader got (below 1 means
    /// some were dropped, which is cheaper than delivery, and the number reads low).
    pub delivered_to_waiting: f64,
}

/// Where forwarded datagrams go.
enum Sink<'a> {
    /// Nowhere: the core alone.
    Nowhere,
    /// One connected socket to a receiver this thread drains between batches, untimed.
    Drained {
        tx: &'a UdpSocket,
        rx: &'a UdpSocket,
    },
    /// To the `to` of each connection (by index), read by [`Readers`].
    Waiting {
        tx: &'a UdpSocket,
        to: &'a [SocketAddr],
    },
}

/// Measures `runs` runs of `packets` packets forwarded to each of `connections` subscribe
/// connections, each run on freshly connected pairs. With many connections each packet visits
/// every connection's state in turn, as a fan-out does, so caches are as cold as a server's.
pub fn measure(runs: usize, packets: usize, connections: usize) -> anyhow::Result<Pipeline> {
    let runs = runs.max(1);
    let packets = packets.max(BATCH);
    let connections = connections.clamp(1, MAX_CONNECTIONS);
    let rx = UdpSocket::bind("127.0.0.1:0").context("binding the receiver")?;
    rx.set_nonblocking(true)?;
    let tx = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    tx.connect(rx.local_addr()?)?;
    let to_waiting = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    let mut core = Vec::new();
    let mut with_send = Vec::new();
    let mut with_waiting = Vec::new();
    let (mut sent_to_waiting, mut delivered) = (0u64, 0u64);
    let (mut datagrams, mut bytes, mut forwarded) = (0u64, 0u64, 0u64);
    for _ in 0..runs {
        let mut pairs = (0..connections)
            .map(Pair::new)
            .collect::<anyhow::Result<Vec<_>>>()?;
        connect(&mut pairs)?;
        let out = forward(&mut pairs, packets, &Sink::Nowhere)?;
        core.push(out.us_per_packet);
        datagrams += out.datagrams;
        bytes += out.bytes;
        forwarded += out.forwarded;
        with_send
            .push(forward(&mut pairs, packets, &Sink::Drained { tx: &tx, rx: &rx })?.us_per_packet);
        let readers = Readers::start(connections)?;
        let sink = Sink::Waiting {
            tx: &to_waiting,
            to: &readers.addrs,
        };
        let out = forward(&mut pairs, packets, &sink)?;
        with_waiting.push(out.us_per_packet);
        sent_to_waiting += out.datagrams;
        delivered += readers.stop();
    }
    Ok(Pipeline {
        connections,
        core_us: median(&mut core.clone()).context("no measurement")?,
        core_and_send_us: median(&mut with_send.clone()).context("no measurement")?,
        datagrams_per_packet: datagrams as f64 / forwarded.max(1) as f64,
        bytes_per_packet: bytes as f64 / datagrams.max(1) as f64,
        core_runs: core,
        core_and_send_runs: with_send,
        core_and_send_to_waiting_us: median(&mut with_waiting.clone()).context("no measurement")?,
        core_and_send_to_waiting_runs: with_waiting,
        delivered_to_waiting: delivered as f64 / sent_to_waiting.max(1) as f64,
    })
}

/// What one pass of [`forward`] did.
struct Forwarded {
    us_per_packet: f64,
    forwarded: u64,
    datagrams: u64,
    bytes: u64,
}

/// Forwards `packets` packets to every pair in turn, their datagrams to `sink`.
fn forward(pairs: &mut [Pair], packets: usize, sink: &Sink<'_>) -> anyhow::Result<Forwarded> {
    let payload = bytes::Bytes::from(vec![0x5a; PAYLOAD_BYTES]);
    let mut buf = vec![0u8; 2048];
    let mut out = Forwarded {
        us_per_packet: 0.0,
        forwarded: 0,
        datagrams: 0,
        bytes: 0,
    };
    let jobs = packets / BATCH * BATCH * pairs.len();
    let mut timed = Duration::ZERO;
    for first in (0..jobs).step_by(BATCH) {
        let started = Instant::now();
        for job in first..first + BATCH {
            let (k, j) = (job / pairs.len(), job % pairs.len());
            let send = match sink {
                Sink::Nowhere => None,
                Sink::Drained { tx, .. } => Some((*tx, None)),
                Sink::Waiting { tx, to } => Some((*tx, to.get(j).copied())),
            };
            let (datagrams, bytes) = pairs[j].write(k, payload.clone(), send)?;
            out.datagrams += datagrams;
            out.bytes += bytes;
        }
        timed += started.elapsed();
        out.forwarded += BATCH as u64;
        if let Sink::Drained { rx, .. } = sink {
            drain(rx, &mut buf);
        }
    }
    out.us_per_packet = timed.as_secs_f64() * 1e6 / out.forwarded.max(1) as f64;
    // A connection that stopped sending (ICE consent lost while nobody answered) would make
    // the packets it swallowed look cheap.
    if out.datagrams < out.forwarded {
        bail!(
            "only {} of {} packets came out; fewer connections or packets per run",
            out.datagrams,
            out.forwarded
        );
    }
    Ok(out)
}

/// The server's subscribe connection (`sfu`, offering one VP8 track) and a viewer.
struct Pair {
    sfu: RTCPeerConnection,
    sender: rtc::rtp_transceiver::RTCRtpSenderId,
    viewer: RTCPeerConnection,
    sfu_addr: SocketAddr,
    viewer_addr: SocketAddr,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    /// Whether the SFU's end and the viewer's have reported themselves connected.
    up: (bool, bool),
}

impl Pair {
    /// The `i`th pair, negotiated; [`connect`] connects it.
    fn new(i: usize) -> anyhow::Result<Self> {
        let now = Instant::now();
        let (engine, registry) = hearth_media::connection_parts(PcTarget::Subscribe, None, None)
            .map_err(|e| anyhow::anyhow!("subscribe connection parts: {e}"))?;
        let mut sfu = peer(engine, registry, now)?;
        let mut viewer_engine = MediaEngine::default();
        viewer_engine.register_default_codecs()?;
        let viewer_registry = register_default_interceptors(Registry::new(), &mut viewer_engine)?;
        let mut viewer = peer(viewer_engine, viewer_registry, now)?;

        let (codec, payload_type) =
            hearth_media::codec_for("video/VP8").context("Hearth forwards VP8")?;
        let ssrc = 0x4845_4152;
        sfu.add_track(MediaStreamTrack::new(
            "bench-stream".into(),
            "bench-video".into(),
            "bench-video".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ))?;

        // Addresses only label the datagrams: nothing is sent on them.
        let port = u16::try_from(10_000 + i)?;
        let sfu_addr = SocketAddr::from(([10, 0, 0, 1], port));
        let viewer_addr = SocketAddr::from(([10, 0, 0, 2], port));
        let offer = sfu.create_offer(None)?;
        sfu.set_local_description(now, offer)?;
        viewer.set_remote_description(now, sfu.local_description().context("the offer is set")?)?;
        let answer = viewer.create_answer(None)?;
        viewer.set_local_description(now, answer)?;
        sfu.set_remote_description(
            now,
            viewer.local_description().context("the answer is set")?,
        )?;
        let candidate = host_candidate(sfu_addr)?;
        sfu.add_local_candidate(candidate.clone())?;
        viewer.add_remote_candidate(candidate)?;
        let candidate = host_candidate(viewer_addr)?;
        viewer.add_local_candidate(candidate.clone())?;
        sfu.add_remote_candidate(candidate)?;

        let sender = sfu.get_senders().next().context("the track's sender")?;
        Ok(Self {
            sender,
            sfu,
            viewer,
            sfu_addr,
            viewer_addr,
            ssrc,
            payload_type,
            sequence: 0,
            up: (false, false),
        })
    }

    /// Moves datagrams both ways and runs due timers; whether anything happened.
    fn pump(&mut self) -> anyhow::Result<bool> {
        let mut moved = false;
        while let Some(out) = self.sfu.poll_write() {
            deliver(
                &mut self.viewer,
                out.message,
                self.viewer_addr,
                self.sfu_addr,
            )?;
            moved = true;
        }
        while let Some(out) = self.viewer.poll_write() {
            deliver(&mut self.sfu, out.message, self.sfu_addr, self.viewer_addr)?;
            moved = true;
        }
        self.up.0 |= connected(&mut self.sfu)?;
        self.up.1 |= connected(&mut self.viewer)?;
        let now = Instant::now();
        for pc in [&mut self.sfu, &mut self.viewer] {
            if pc.poll_timeout().is_some_and(|at| at <= now) {
                pc.handle_timeout(now)?;
                moved = true;
            }
        }
        Ok(moved)
    }

    /// Writes the `k`th packet of the stream and takes what comes out; with `send`, sends it
    /// (to the address given, or where the socket is connected). Returns the datagrams and
    /// bytes out.
    fn write(
        &mut self,
        k: usize,
        payload: bytes::Bytes,
        send: Option<(&UdpSocket, Option<SocketAddr>)>,
    ) -> anyhow::Result<(u64, u64)> {
        self.sequence = self.sequence.wrapping_add(1);
        // Five packets a frame, 30 frames a second.
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: self.payload_type,
                sequence_number: self.sequence,
                timestamp: ((k / 5) as u32).wrapping_mul(3000),
                ssrc: self.ssrc,
                marker: k % 5 == 4,
                ..Default::default()
            },
            payload,
        };
        let now = Instant::now();
        self.sfu
            .rtp_sender(self.sender)
            .context("the track's sender")?
            .write_rtp(now, packet)?;
        let (mut datagrams, mut bytes) = (0, 0);
        while let Some(out) = self.sfu.poll_write() {
            datagrams += 1;
            bytes += out.message.len() as u64;
            match send {
                Some((tx, Some(to))) => {
                    tx.send_to(&out.message, to).context("UDP send")?;
                }
                Some((tx, None)) => {
                    tx.send(&out.message).context("UDP send")?;
                }
                None => {}
            }
        }
        if self.sfu.poll_timeout().is_some_and(|at| at <= now) {
            self.sfu.handle_timeout(now)?;
        }
        Ok((datagrams, bytes))
    }
}

/// One socket per connection, read by a thread of their own that waits for datagrams (a
/// current-thread tokio runtime, as a client's would).
struct Readers {
    addrs: Vec<SocketAddr>,
    received: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(n: usize) -> anyhow::Result<Self> {
        let sockets = (0..n)
            .map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.set_nonblocking(true)?;
                Ok(socket)
            })
            .collect::<std::io::Result<Vec<_>>>()
            .context("binding the readers' sockets")?;
        let addrs = sockets
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;
        let received = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let count = Arc::clone(&received);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                for socket in sockets {
                    let Ok(socket) = tokio::net::UdpSocket::from_std(socket) else {
                        continue;
                    };
                    let count = Arc::clone(&count);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        while socket.recv(&mut buf).await.is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                let _ = stopped.await;
            });
        });
        Ok(Self {
            addrs,
            received,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops reading, once the last datagrams had a moment to arrive; how many arrived.
    fn stop(mut self) -> u64 {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.received.load(Ordering::Relaxed)
    }
}

/// Connects every pair, all at once (ICE checks are paced by timers, so one by one would take
/// a fifth of a second each).
fn connect(pairs: &mut [Pair]) -> anyhow::Result<()> {
    let started = Instant::now();
    while pairs.iter().any(|p| p.up != (true, true)) {
        if started.elapsed() > CONNECT_LIMIT {
            bail!("the in-memory pairs did not connect within {CONNECT_LIMIT:?}");
        }
        let mut moved = false;
        for pair in pairs.iter_mut() {
            moved |= pair.pump()?;
        }
        if !moved {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

fn peer(
    engine: MediaEngine,
    registry: Registry,
    now: Instant,
) -> anyhow::Result<RTCPeerConnection> {
    Ok(RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(SettingEngineBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)?)
}

fn host_candidate(
    addr: SocketAddr,
) -> anyhow::Result<rtc::peer_connection::transport::RTCIceCandidateInit> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    Ok(RTCIceCandidate::from(&candidate).to_json()?)
}

fn deliver(
    to: &mut RTCPeerConnection,
    datagram: bytes::BytesMut,
    local: SocketAddr,
    peer: SocketAddr,
) -> anyhow::Result<()> {
    to.handle_read(TaggedBytesMut {
        now: Instant::now(),
        transport: TransportContext {
            local_addr: local,
            peer_addr: peer,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: datagram,
    })?;
    Ok(())
}

/// Whether `pc` reported itself connected among its pending events.
fn connected(pc: &mut RTCPeerConnection) -> anyhow::Result<bool> {
    let mut up = false;
    while let Some(event) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
            match state {
                RTCPeerConnectionState::Connected => up = true,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    bail!("the in-memory pair failed to connect ({state})")
                }
                _ => {}
            }
        }
    }
    Ok(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_pair_forwards_every_packet_as_one_protected_datagram() {
        let pipeline = measure(1, 256, 2).expect("measures");
        assert!(pipeline.core_us > 0.0 && pipeline.core_and_send_us > 0.0);
        assert!(pipeline.core_and_send_to_waiting_us > 0.0);
        // The readers got what was sent (all of it unless a busy machine kept them waiting).
        assert!(pipeline.delivered_to_waiting > 0.0, "{pipeline:?}");
        // Every packet left as a datagram; sender reports add a few at most.
        assert!(
            (1.0..1.1).contains(&pipeline.datagrams_per_packet),
            "{pipeline:?}"
        );
        // The payload, the RTP header and SRTP's tag at least.
        assert!(pipeline.bytes_per_packet > 1200.0, "{pipeline:?}");
    }
}
