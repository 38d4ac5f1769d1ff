//! Which IP addresses may be contacted on a user's behalf. Everything that is not a globally
//! routable unicast address is refused unless the operator allows it; cloud metadata endpoints
//! stay refused even under `allow_private`, and only an explicit CIDR opens them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Cloud instance-metadata addresses (AWS/GCP/Azure/OpenStack, AWS IPv6).
const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// The operator's exceptions to the public-internet-only rule.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Allow loopback, private, CGNAT, ULA and link-local addresses (not metadata endpoints).
    pub allow_private: bool,
    /// Networks allowed regardless of kind (this is the only way to reach a metadata address).
    pub allowed_cidrs: Vec<IpNet>,
    /// Host names (exact, case-insensitive) whose resolved addresses are not checked.
    pub allowed_hosts: Vec<String>,
}

impl AddressPolicy {
    /// Whether `ip` (reached through `host`) may be contacted.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.allowed_cidrs.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
        if self.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return true;
        }
        if METADATA.contains(&ip) {
            return false;
        }
        if is_public(ip) {
            return true;
        }
        self.allow_private && !is_multicast_or_unspecified(ip)
    }
}

/// Unwraps IPv4-mapped/-compatible and NAT64/6to4 forms to the IPv4 address they carry, so
/// `::ffff:127.0.0.1` is judged as `127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // 64:ff9b::/96 (NAT64) embeds an IPv4 address in the last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
                return IpAddr::V4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            // 2002::/16 (6to4) embeds one in bits 16..48.
            if s[0] == 0x2002 {
                return IpAddr::V4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn is_multicast_or_unspecified(ip: IpAddr) -> bool {
    ip.is_multicast() || ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// True for globally routable unicast addresses only.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(a == 0                                   // "this" network
                || a == 10                             // RFC 1918
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
                || a == 127                            // loopback
                || (a == 169 && b == 254)              // link-local, metadata
                || (a == 172 && (16..32).contains(&b)) // RFC 1918
                || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
                || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
                || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
                || (a == 192 && b == 168)              // RFC 1918
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
                || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
                || a >= 224) // multicast, reserved, broadcast
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00              // ULA fc00::/7 (incl. fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80              // link-local
                || (s[0] & 0xffc0) == 0xfec0              // site-local (deprecated)
                || (s[0] & 0xff00) == 0xff00              // multicast
                || (s[0] == 0x2001 && s[1] < 0x200)       // IETF assignments incl. Teredo
                || (s[0] == 0x2001 && s[1] == 0x0db8)     // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
                || s[0] == 0) // IPv4-compatible and other reserved ::/16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_global_unicast_addresses_are_public() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "fc00::1",
        ] {
            assert!(!is_public(ip(blocked)), "{blocked} must not be public");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip(public)), "{public} is public");
        }
    }

    #[test]
    fn allow_private_does_not_open_metadata_but_a_cidr_does() {
        let policy = AddressPolicy { allow_private: true, ..Default::default() };
        assert!(policy.permits("x", ip("127.0.0.1")));
        assert!(policy.permits("x", ip("10.0.0.1")));
        assert!(!policy.permits("x", ip("169.254.169.254")));
        assert!(!policy.permits("x", ip("fd00:ec2::254")));
        let policy = AddressPolicy {
            allowed_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
            ..Default::default()
        };
        assert!(policy.permits("x", ip("169.254.169.254")));
        assert!(!policy.permits("x", ip("127.0.0.1")));
    }
}
