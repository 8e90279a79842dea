//! The floor: what any SFU must pay per forwarded packet on this machine, whatever its design.
//! Each copy to a subscriber is encrypted for that subscriber (SRTP protect, a fresh key per
//! peer) and sent (one UDP send); everything else an SFU does per packet is overhead on top.
//! The run report divides the server's CPU per forwarded packet by this.

use anyhow::Context as _;
use rtc::rtp::header::Header;
use rtc::shared::marshal::Marshal;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use serde::Serialize;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The size browsers packetize video to, RTP header included.
const PACKET_BYTES: usize = 1200;
/// Sends between drains of the receiving socket: few enough that its default receive buffer
/// (about 90 such packets) never overflows, so every timed send takes the full delivery path
/// instead of the cheaper drop path.
pub(crate) const BATCH: usize = 32;

/// Microseconds per packet, each the median of several runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    /// SRTP protect with AES_CM_128_HMAC_SHA1_80 (what every WebRTC stack supports).
    pub srtp_aes_cm_us: f64,
    /// SRTP protect with AEAD_AES_128_GCM, when the crypto provider has it.
    pub srtp_aes_gcm_us: Option<f64>,
    /// One UDP send of the protected packet on loopback.
    pub udp_send_us: f64,
    /// Protect with the profile a subscribe connection negotiates, and send, measured
    /// together: the floor the run report compares with.
    pub floor_us: f64,
    /// The profile `floor_us` protects with: AEAD_AES_128_GCM, which webrtc-rs prefers and
    /// Chromium and the headless client offer, so it is what every subscriber of these runs
    /// negotiates; AES_CM_128_HMAC_SHA1_80 if the crypto provider lacks GCM.
    pub floor_profile: &'static str,
    /// Protect (AES-CM) and send: the floor of a subscriber that negotiates only AES-CM.
    pub floor_aes_cm_us: f64,
}

/// Measures `runs` runs of `packets` packets each.
pub fn measure(runs: usize, packets: usize) -> anyhow::Result<Floor> {
    let runs = runs.max(1);
    let packets = packets.max(BATCH);
    let mut cm = Vec::new();
    let mut gcm = Vec::new();
    let mut send = Vec::new();
    let mut both = Vec::new();
    let mut both_cm = Vec::new();
    let negotiated = if context(ProtectionProfile::AeadAes128Gcm).is_ok() {
        ProtectionProfile::AeadAes128Gcm
    } else {
        ProtectionProfile::Aes128CmHmacSha1_80
    };
    let mut link = Link::new()?;
    for _ in 0..runs {
        cm.push(protect_only(
            ProtectionProfile::Aes128CmHmacSha1_80,
            packets,
        )?);
        if let Ok(us) = protect_only(ProtectionProfile::AeadAes128Gcm, packets) {
            gcm.push(us);
        }
        send.push(link.send_only(packets)?);
        both.push(link.protect_and_send(negotiated, packets)?);
        both_cm.push(link.protect_and_send(ProtectionProfile::Aes128CmHmacSha1_80, packets)?);
    }
    Ok(Floor {
        srtp_aes_cm_us: median(&mut cm).context("no AES-CM measurement")?,
        srtp_aes_gcm_us: median(&mut gcm),
        udp_send_us: median(&mut send).context("no UDP measurement")?,
        floor_us: median(&mut both).context("no combined measurement")?,
        floor_profile: match negotiated {
            ProtectionProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            _ => "AES_CM_128_HMAC_SHA1_80",
        },
        floor_aes_cm_us: median(&mut both_cm).context("no AES-CM combined measurement")?,
    })
}

/// Empties a non-blocking receiver, untimed. Bounded: its buffer holds fewer than a batch and a
/// half of sends.
pub(crate) fn drain(rx: &UdpSocket, buf: &mut [u8]) {
    for _ in 0..4 * BATCH {
        if rx.recv(buf).is_err() {
            break;
        }
    }
}

/// The median of `values`; `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        f64::midpoint(values[mid - 1], values[mid])
    })
}

/// A plaintext RTP packet of [`PACKET_BYTES`] and its parsed header.
fn rtp_packet() -> anyhow::Result<(Vec<u8>, Header)> {
    let header = Header {
        version: 2,
        payload_type: 96,
        sequence_number: 1,
        timestamp: 90_000,
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    let mut packet = header.marshal().context("RTP header")?.to_vec();
    let mut fill = 7u32;
    while packet.len() < PACKET_BYTES {
        fill = fill.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        packet.push((fill >> 16) as u8);
    }
    Ok((packet, header))
}

fn context(profile: ProtectionProfile) -> anyhow::Result<Context> {
    let provider = rtc::crypto::default_provider().context("no crypto provider")?;
    let key = vec![0x42; profile.key_len()];
    let salt = vec![0x24; profile.salt_len()];
    Context::new(&key, &salt, profile, None, None, provider.crypto())
        .with_context(|| format!("SRTP context for {profile:?}"))
}

/// Advances the packet to its next sequence number, as a forwarder rewrites it.
fn next_seq(packet: &mut [u8], header: &mut Header) {
    header.sequence_number = header.sequence_number.wrapping_add(1);
    packet[2..4].copy_from_slice(&header.sequence_number.to_be_bytes());
}

fn protect_only(profile: ProtectionProfile, packets: usize) -> anyhow::Result<f64> {
    let mut ctx = context(profile)?;
    let (mut packet, mut header) = rtp_packet()?;
    let started = Instant::now();
    for _ in 0..packets {
        next_seq(&mut packet, &mut header);
        let out = ctx
            .encrypt_rtp_with_header(&packet, &header)
            .context("SRTP protect")?;
        std::hint::black_box(out);
    }
    Ok(per_packet(started.elapsed(), packets))
}

fn per_packet(elapsed: Duration, packets: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / packets as f64
}

/// A sender and a bound receiver on loopback.
struct Link {
    tx: UdpSocket,
    rx: UdpSocket,
    drain: Vec<u8>,
}

impl Link {
    fn new() -> anyhow::Result<Self> {
        let rx = UdpSocket::bind("127.0.0.1:0").context("binding the receiver")?;
        rx.set_nonblocking(true)?;
        let tx = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
        Ok(Self {
            tx,
            rx,
            drain: vec![0; 2048],
        })
    }

    /// Empties the receiver, untimed.
    fn drain(&mut self) {
        drain(&self.rx, &mut self.drain);
    }

    fn send_only(&mut self, packets: usize) -> anyhow::Result<f64> {
        let mut ctx = context(ProtectionProfile::Aes128CmHmacSha1_80)?;
        let (packet, header) = rtp_packet()?;
        let protected = ctx.encrypt_rtp_with_header(&packet, &header)?;
        let to = self.rx.local_addr()?;
        let mut timed = Duration::ZERO;
        for _ in 0..packets / BATCH {
            let started = Instant::now();
            for _ in 0..BATCH {
                self.tx.send_to(&protected, to).context("UDP send")?;
            }
            timed += started.elapsed();
            self.drain();
        }
        Ok(per_packet(timed, packets / BATCH * BATCH))
    }

    fn protect_and_send(
        &mut self,
        profile: ProtectionProfile,
        packets: usize,
    ) -> anyhow::Result<f64> {
        let mut ctx = context(profile)?;
        let (mut packet, mut header) = rtp_packet()?;
        let to = self.rx.local_addr()?;
        let mut timed = Duration::ZERO;
        for _ in 0..packets / BATCH {
            let started = Instant::now();
            for _ in 0..BATCH {
                next_seq(&mut packet, &mut header);
                let protected = ctx.encrypt_rtp_with_header(&packet, &header)?;
                self.tx.send_to(&protected, to).context("UDP send")?;
            }
            timed += started.elapsed();
            self.drain();
        }
        Ok(per_packet(timed, packets / BATCH * BATCH))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn a_short_floor_measurement_gives_positive_costs() {
        let floor = measure(1, 256).expect("measures");
        assert!(floor.srtp_aes_cm_us > 0.0 && floor.udp_send_us > 0.0 && floor.floor_us > 0.0);
        assert!(floor.floor_aes_cm_us > 0.0);
    }
}
