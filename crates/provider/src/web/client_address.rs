//! Where a request comes from, for counting sign-in attempts: the connection's peer, or, when
//! the peer is a trusted proxy, the address that proxy reports in `X-Forwarded-For`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PageError;
use crate::Provider;

/// The proxies whose `X-Forwarded-For` refreshd believes: addresses or CIDR networks. Empty by
/// default, when the header is ignored: anyone could write it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Addresses (`10.0.0.1`, `::1`) or networks (`10.0.0.0/8`), separated by commas.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(proxy)
            .collect()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn proxy(entry: &str) -> Result<IpNet, String> {
    entry
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{entry:?} is not an IP address or a CIDR network"))
}

impl FromIterator<IpNet> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNet>>(nets: I) -> Self {
        Self(nets.into_iter().collect())
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// A list (`["10.0.0.0/8", "::1"]` in TOML) or one comma-separated string (as
/// `REFRESHD_TRUSTED_PROXIES` gives it).
impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            List(Vec<String>),
            Text(String),
        }
        let list = match Given::deserialize(deserializer)? {
            Given::List(entries) => entries.join(","),
            Given::Text(text) => text,
        };
        Self::parse(&list).map_err(serde::de::Error::custom)
    }
}

/// Where a request comes from, as far as refreshd can tell: an IPv4 address, or an IPv6
/// address's /64 network (one subscriber's usual share, so an attacker cannot get a fresh
/// count by moving to the next of their 2^64 addresses). `None` when the server was started
/// without connection info.
pub struct ClientAddress(Option<String>);

impl ClientAddress {
    /// The address, if refreshd can tell it.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The address, or a refusal when refreshd cannot tell it: sign-in then fails closed.
    pub fn known(&self) -> Result<&str, PageError> {
        self.0.as_deref().ok_or_else(|| {
            tracing::error!(
                "no client address on a sign-in (the server must be served with connect info); \
                 refusing it"
            );
            PageError::NoClientAddress
        })
    }
}

impl FromRequestParts<Provider> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        provider: &Provider,
    ) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let client = peer.map(|peer| {
            let forwarded = forwarded_for(&parts.headers);
            counted_as(client_ip(
                peer.0.ip(),
                &forwarded,
                &provider.trusted_proxies,
            ))
        });
        Ok(Self(client))
    }
}

/// The hops of every `X-Forwarded-For` line, nearest last; an unreadable line is one empty hop.
fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| line.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .collect()
}

/// The peer, unless it is a trusted proxy: then the nearest hop in `forwarded` that is not a
/// trusted proxy. Hops further away were written by whoever sent the request, so they are never
/// read past that one; an unreadable hop stops the walk at the nearest trusted one.
fn client_ip(peer: IpAddr, forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        if !forwarded.is_empty() && client.is_loopback() {
            proxy_not_trusted(client);
        }
        return client;
    }
    for hop in forwarded.iter().rev() {
        let Some(ip) = hop_ip(hop) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// Warns once that a proxy on this machine forwards requests but is not trusted: every client
/// then shares its address, and sign-in limits count them all as one.
fn proxy_not_trusted(peer: IpAddr) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            %peer,
            "requests carry X-Forwarded-For from a local proxy that trusted_proxies does not \
             list: sign-in attempts, device-code lookups and device-flow starts from every client \
             behind it are counted as one address"
        );
    });
}

/// A hop's address: `192.0.2.1`, `2001:db8::1`, or with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn hop_ip(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

/// How attempts from `ip` are counted: IPv4 as it is, IPv6 by its /64 network.
fn counted_as(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
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
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let hops = ["198.51.100.7", "203.0.113.9", "10.1.2.3"];
        assert_eq!(
            client_ip(ip("127.0.0.1"), &hops, &trusted),
            ip("203.0.113.9"),
            "the nearest hop that is not a trusted proxy"
        );
        assert_eq!(
            client_ip(ip("192.0.2.1"), &hops, &trusted),
            ip("192.0.2.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_ip(ip("192.0.2.1"), &hops, &TrustedProxies::default()),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["203.0.113.9", "nonsense"], &trusted),
            ip("127.0.0.1"),
            "an unreadable hop is not read past"
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &["192.0.2.8"], &trusted),
            ip("192.0.2.8"),
            "an IPv4-mapped peer is its IPv4 address"
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_64_network() {
        assert_eq!(counted_as(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(counted_as(ip("2001:db8:1:2::ffff")), "2001:db8:1:2::/64");
        assert_eq!(counted_as(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(counted_as(ip("192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let parsed = TrustedProxies::parse("10.0.0.1/8, ::1,").unwrap();
        assert!(parsed.contains(ip("10.200.0.1")));
        assert!(parsed.contains(ip("::1")));
        assert!(!parsed.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
    }

    #[test]
    fn trusted_proxies_are_configured_as_a_list_or_one_comma_separated_string() {
        let listed: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).unwrap();
        let joined: TrustedProxies = serde_json::from_str(r#""10.0.0.0/8,::1""#).unwrap();
        assert_eq!(listed, joined);
        assert!(listed.contains(ip("10.1.1.1")) && listed.contains(ip("::1")));
        let written = serde_json::to_string(&listed).unwrap();
        assert_eq!(written, r#"["10.0.0.0/8","::1/128"]"#);
        assert_eq!(
            serde_json::from_str::<TrustedProxies>(&written).unwrap(),
            listed
        );
        assert!(serde_json::from_str::<TrustedProxies>(r#"["10.0.0.0/8", "a"]"#).is_err());
    }
}
