//! Where media sockets bind and what address they advertise.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// An inclusive range of UDP ports for media sockets. webrtc-rs gives every peer connection its
/// own socket, so a range of N ports serves N/2 participants (publish + subscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub min: u16,
    /// Last port (inclusive).
    pub max: u16,
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("expected MIN-MAX, got `{s}`"))?;
        let min: u16 = a.trim().parse().map_err(|_| format!("bad port `{a}`"))?;
        let max: u16 = b.trim().parse().map_err(|_| format!("bad port `{b}`"))?;
        if min == 0 || min > max {
            return Err(format!(
                "`{s}` is not a range of ports (1-65535, MIN <= MAX)"
            ));
        }
        Ok(Self { min, max })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// Media network settings.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address to bind media sockets to. The unspecified address (`0.0.0.0`) binds one socket
    /// per non-loopback interface.
    pub bind_ip: IpAddr,
    /// Address to put in ICE candidates instead of the bound one, for servers behind 1:1 NAT
    /// (Docker's port mapping, a cloud VM's public IP). webrtc-rs ignores its own NAT 1:1
    /// setting, so Hearth rewrites candidates itself.
    pub public_ip: Option<IpAddr>,
    /// Ports to bind; `None` means any free port.
    pub ports: Option<PortRange>,
    /// A media connection that hears nothing from its client this long counts as disconnected
    /// (media may come back by itself, as after a short Wi-Fi dropout).
    pub ice_disconnected: Duration,
    /// A disconnected connection that stays silent this much longer has failed: only an ICE
    /// restart from the client brings it back.
    pub ice_failed: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            public_ip: None,
            ports: None,
            // webrtc-rs's own defaults, which match browsers'.
            ice_disconnected: Duration::from_secs(5),
            ice_failed: Duration::from_secs(25),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_reject_nonsense() {
        assert_eq!(
            "40000-40100".parse::<PortRange>().unwrap(),
            PortRange {
                min: 40000,
                max: 40100
            }
        );
        assert!("40100-40000".parse::<PortRange>().is_err());
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("4000".parse::<PortRange>().is_err());
        assert!("a-b".parse::<PortRange>().is_err());
    }
}
