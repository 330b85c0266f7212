//! Which peers an allocation may relay to.
//!
//! An open relay is an SSRF engine: without a deny list any signed-in user
//! could make the server send UDP to its own loopback services, to the
//! private network behind it, or to a cloud metadata endpoint. coturn leaves
//! this to `denied-peer-ip` lines an operator may forget; here it is the
//! default. Special-purpose ranges are refused unless an operator lists them
//! in `allow`. The server's own addresses (the relay address, and the listen
//! address when it is a specific one) reach only the relay ports, whatever
//! the lists say: two relay-only browsers on one server can talk, but no
//! permission reaches the TURN listener or another service on the host, even
//! when the relay address is public or inside an allowed network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;

/// An IPv4 or IPv6 network in CIDR notation, e.g. `127.0.0.1/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// Whether `ip` lies inside this network (families must match).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xFFu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// Why a CIDR string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an address or CIDR like 127.0.0.1/32 or fd00::/8, got {0:?}")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_owned());
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = ip.trim().parse().map_err(|_| err())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| err())?,
            None => max,
        };
        if prefix > max {
            return Err(err());
        }
        Ok(Self { network, prefix })
    }
}

/// Ranges no relay may reach unless explicitly allowed: "this network",
/// private (RFC 1918, ULA), shared CGNAT space, loopback, link-local (which
/// holds the 169.254.169.254 metadata service), IETF protocol assignments,
/// benchmarking, multicast, reserved and broadcast.
const DENIED: &[Cidr] = &[
    Cidr::v4(0, 0, 0, 0, 8),
    Cidr::v4(10, 0, 0, 0, 8),
    Cidr::v4(100, 64, 0, 0, 10),
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v4(169, 254, 0, 0, 16),
    Cidr::v4(172, 16, 0, 0, 12),
    Cidr::v4(192, 0, 0, 0, 24),
    Cidr::v4(192, 168, 0, 0, 16),
    Cidr::v4(198, 18, 0, 0, 15),
    Cidr::v4(224, 0, 0, 0, 4),
    Cidr::v4(240, 0, 0, 0, 4),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
    Cidr::v6([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),
    Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

/// The relay's peer rules.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    /// Networks allowed even though they are in the deny list.
    pub allow: Vec<Cidr>,
    /// The server's own addresses (the relay address, the listen address):
    /// only their relay ports are reachable.
    pub own: Vec<IpAddr>,
    /// The port range relays use.
    pub relay_ports: RangeInclusive<u16>,
}

impl PeerPolicy {
    /// Whether relaying to `peer` is allowed.
    pub fn permits(&self, peer: SocketAddr) -> bool {
        self.reach(peer.ip())
            .permits(peer.port(), &self.relay_ports)
    }

    /// Which ports of `ip` a permission may reach: decided once when the
    /// permission is installed, checked per packet with [`Reach::permits`].
    pub fn reach(&self, ip: IpAddr) -> Reach {
        let ip = canonical(ip);
        if self.own.iter().any(|own| canonical(*own) == ip) {
            return Reach::RelayPorts;
        }
        let listed = self.allow.iter().any(|c| c.contains(ip));
        if listed || (!DENIED.iter().any(|c| c.contains(ip)) && !ip.is_unspecified()) {
            Reach::Any
        } else {
            Reach::None
        }
    }
}

/// What a permission to one IP address allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every port.
    Any,
    /// Only the relay port range: the address is one of the server's own
    /// (e.g. 127.0.0.1 in a one-machine setup, or a public relay address).
    RelayPorts,
    /// Nothing: a permission is refused with 403.
    None,
}

impl Reach {
    /// Whether `port` may be reached.
    pub fn permits(self, port: u16, relay_ports: &RangeInclusive<u16>) -> bool {
        match self {
            Self::Any => true,
            Self::RelayPorts => relay_ports.contains(&port),
            Self::None => false,
        }
    }
}

/// IPv4-mapped and NAT64 IPv6 addresses judged as the IPv4 they carry, so
/// `::ffff:127.0.0.1` cannot sneak past the IPv4 deny list.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> PeerPolicy {
        PeerPolicy {
            allow: allow.iter().map(|c| c.parse().expect("cidr")).collect(),
            own: vec!["203.0.113.10".parse().expect("ip")],
            relay_ports: 49152..=49200,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn special_ranges_are_refused_by_default() {
        let p = policy(&[]);
        for peer in [
            "127.0.0.1:6379",
            "10.1.2.3:80",
            "172.20.0.1:80",
            "192.168.1.1:53",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "0.0.0.0:80",
            "224.0.0.251:5353",
            "255.255.255.255:9",
            "[::1]:6379",
            "[fe80::1]:80",
            "[fd00:ec2::254]:80",
            "[ff02::1]:80",
            "[::ffff:127.0.0.1]:6379",
            "[64:ff9b::a9fe:a9fe]:80",
        ] {
            assert!(!p.permits(addr(peer)), "{peer} should be refused");
        }
        for peer in ["8.8.8.8:3478", "198.51.100.7:5000", "[2001:4860::8888]:53"] {
            assert!(p.permits(addr(peer)), "{peer} should be allowed");
        }
    }

    #[test]
    fn allow_list_opens_exactly_its_networks() {
        let p = policy(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert!(p.permits(addr("127.0.0.1:3480")));
        assert!(!p.permits(addr("127.0.0.2:3480")));
        assert!(p.permits(addr("10.200.1.1:3480")));
        assert!(!p.permits(addr("192.168.0.1:3480")));
    }

    #[test]
    fn own_relay_ports_are_reachable_but_not_other_ports() {
        let p = PeerPolicy {
            own: vec!["127.0.0.1".parse().expect("ip")],
            ..policy(&[])
        };
        assert!(p.permits(addr("127.0.0.1:49160")));
        assert!(!p.permits(addr("127.0.0.1:6379")), "Redis on loopback");
        assert_eq!(p.reach("127.0.0.1".parse().expect("ip")), Reach::RelayPorts);
        assert_eq!(p.reach("127.0.0.2".parse().expect("ip")), Reach::None);
    }

    #[test]
    fn a_public_or_allowed_own_address_reaches_only_relay_ports() {
        // 203.0.113.10 is outside every denied range: a public relay IP.
        let p = policy(&["203.0.113.0/24"]);
        for own in ["203.0.113.10", "::ffff:203.0.113.10"] {
            assert_eq!(p.reach(own.parse().expect("ip")), Reach::RelayPorts);
        }
        assert!(p.permits(addr("203.0.113.10:49160")));
        for port in [3478, 22, 6379, 5432] {
            let peer = SocketAddr::new("203.0.113.10".parse().expect("ip"), port);
            assert!(!p.permits(peer), "{peer}");
        }
        assert!(
            p.permits(addr("203.0.113.11:3478")),
            "a neighbour is a peer"
        );
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!("10.0.0.0/8".parse::<Cidr>(), Ok(Cidr::v4(10, 0, 0, 0, 8)));
        assert_eq!("1.2.3.4".parse::<Cidr>(), Ok(Cidr::v4(1, 2, 3, 4, 32)));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("fd00::/129".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let c: Cidr = "10.128.0.0/9".parse().expect("cidr");
        assert!(c.contains("10.200.0.1".parse().expect("ip")));
        assert!(!c.contains("10.1.0.1".parse().expect("ip")));
    }
}
