//! Audio levels (RFC 6464) read from a publisher's packets, summed per track until the room
//! collects them. The reader task adds one level per packet; the room takes the sum a few times
//! a second. One atomic word holds the sum, so neither side ever waits for the other.

use hearth_core::LevelSample;
use hearth_core::speaker::voiced_loudness;
use rtc::rtp;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits 48..64 count packets, 32..48 voiced packets, 0..32 the voiced packets' loudness. At 50
/// packets a second a field would need minutes without a collection to overflow, and the room
/// collects every 250 ms; a client flooding audio only corrupts its own levels.
#[derive(Debug, Default)]
pub(crate) struct AudioLevels(AtomicU64);

const PACKET: u64 = 1 << 48;
const VOICED: u64 = 1 << 32;

impl AudioLevels {
    /// Adds the level `packet` carries in header extension `ext_id`, if it carries one.
    pub(crate) fn add(&self, packet: &rtp::Packet, ext_id: u8) {
        if ext_id == 0 {
            return;
        }
        let Some(level) = audio_level(packet, ext_id) else {
            return;
        };
        let add = match voiced_loudness(level) {
            Some(loudness) => PACKET + VOICED + u64::from(loudness),
            None => PACKET,
        };
        self.0.fetch_add(add, Ordering::Relaxed);
    }

    /// What was added since the last call.
    pub(crate) fn take(&self) -> LevelSample {
        let word = self.0.swap(0, Ordering::Relaxed);
        LevelSample {
            packets: (word >> 48) as u32,
            voiced: ((word >> 32) & 0xffff) as u32,
            voiced_loudness: (word & 0xffff_ffff) as u32,
        }
    }
}

/// The level in an RFC 6464 one-byte extension: the low 7 bits, in -dBov (the top bit is the
/// voice-activity flag, which not every sender sets, so it is not trusted).
fn audio_level(packet: &rtp::Packet, ext_id: u8) -> Option<u8> {
    if !packet.header.extension {
        return None;
    }
    let payload = packet.header.get_extension(ext_id)?;
    payload.first().map(|b| b & 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_with_level(ext_id: u8, byte: u8) -> rtp::Packet {
        let mut packet = rtp::Packet::default();
        packet
            .header
            .set_extension(ext_id, bytes::Bytes::from(vec![byte]))
            .unwrap();
        packet
    }

    #[test]
    fn levels_are_summed_until_taken() {
        let levels = AudioLevels::default();
        levels.add(&packet_with_level(1, 0x80 | 20), 1); // voiced, -20 dBov, V flag set
        levels.add(&packet_with_level(1, 30), 1);
        levels.add(&packet_with_level(1, 127), 1); // silence
        levels.add(&packet_with_level(2, 10), 1); // another extension: not a level
        levels.add(&rtp::Packet::default(), 1); // no extension at all
        assert_eq!(
            levels.take(),
            LevelSample {
                packets: 3,
                voiced: 2,
                voiced_loudness: (127 - 20) + (127 - 30),
            }
        );
        assert_eq!(levels.take(), LevelSample::default(), "taking resets");
    }

    #[test]
    fn without_a_negotiated_extension_nothing_is_read() {
        let levels = AudioLevels::default();
        levels.add(&packet_with_level(1, 20), 0);
        assert_eq!(levels.take(), LevelSample::default());
    }
}
