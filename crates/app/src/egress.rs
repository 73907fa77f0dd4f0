//! Where the system may send requests of its own: webhook deliveries go to public addresses
//! only. A URL whose host is, or resolves to, a loopback, private, link-local, unique-local,
//! shared (carrier-grade NAT), multicast or unspecified address is refused, both when an endpoint
//! is registered and, after DNS resolution, at every delivery, which then connects to exactly
//! the addresses checked (no second lookup an attacker could answer differently) and follows no
//! redirect. Otherwise any office could point the worker at `127.0.0.1`, the cloud metadata
//! service or the compose services, and read the delivery log as a port scanner.
//!
//! `KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS` lists networks that are allowed all the same (CIDR, e.g.
//! `127.0.0.1/32` for a receiver on the same machine in development and tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use url::Url;

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not an `http(s)://` URL with a host.
    #[error("must be an http(s) URL with a host")]
    NotHttp,
    /// The host is or resolves to an address this system never sends to.
    #[error(
        "{host}{} a {kind} address: webhooks go to public addresses only",
        if host.trim_matches(['[', ']']) == address.to_string() { " is".to_owned() } else { format!(" is {address},") }
    )]
    Forbidden {
        /// The URL's host.
        host: String,
        /// The address it is or resolves to.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
    /// The host does not resolve (at delivery: nothing to send to).
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// The destinations allowed beyond public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

/// A checked destination: the URL's host and the addresses to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host as written in the URL.
    pub host: String,
    /// Its addresses, every one allowed.
    pub addresses: Vec<SocketAddr>,
}

impl EgressPolicy {
    /// Public addresses, and also those in `allowed`.
    pub fn allowing(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Parses `KEPATUHAN_WEBHOOK_ALLOWED_NETWORKS`: comma-separated CIDR networks or addresses.
    pub fn parse(list: &str) -> Result<Self, String> {
        let allowed = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not a network (CIDR) or an address"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Why `address` is refused, or `None` when it may be sent to.
    pub fn refusal(&self, address: IpAddr) -> Option<&'static str> {
        let kind = non_public(address)?;
        (!self.allowed.iter().any(|n| n.contains(&address))).then_some(kind)
    }

    /// Checks a URL as far as it can without resolving: its form, and its host when that is an
    /// address or `localhost` (registration).
    pub fn check_url(&self, raw: &str) -> Result<Url, EgressError> {
        let url = Url::parse(raw).map_err(|_| EgressError::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::NotHttp);
        }
        let host = match url.host() {
            None => return Err(EgressError::NotHttp),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    return Ok(url);
                }
            }
        };
        match self.refusal(host) {
            Some(kind) => Err(EgressError::Forbidden {
                host: url.host_str().unwrap_or_default().to_owned(),
                address: host,
                kind,
            }),
            None => Ok(url),
        }
    }

    /// Resolves a host name: every address it resolves to must be allowed, or none is returned
    /// (a name that resolves to one private address among public ones is refused whole). The
    /// webhook client's DNS resolver, so that the addresses connected to are the ones checked.
    pub async fn resolve_host(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| EgressError::Unresolved(host.to_owned()))?
            .collect();
        if addresses.is_empty() {
            return Err(EgressError::Unresolved(host.to_owned()));
        }
        for a in &addresses {
            if let Some(kind) = self.refusal(a.ip()) {
                return Err(EgressError::Forbidden {
                    host: host.to_owned(),
                    address: a.ip(),
                    kind,
                });
            }
        }
        Ok(addresses)
    }

    /// Checks a URL and resolves its host: every address must be allowed (delivery).
    pub async fn resolve(&self, raw: &str) -> Result<Destination, EgressError> {
        let url = self.check_url(raw)?;
        let host = url.host_str().ok_or(EgressError::NotHttp)?.to_owned();
        let port = url.port_or_known_default().ok_or(EgressError::NotHttp)?;
        let lookup = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let addresses = self.resolve_host(&lookup, port).await?;
        Ok(Destination {
            host: lookup,
            addresses,
        })
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => non_public_v4(v4),
            None => non_public_v6(v6),
        },
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_unique_local() {
        Some("unique-local")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_unless_allowed() {
        let policy = EgressPolicy::default();
        for refused in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://api.localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/",
            "http://172.20.0.5/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                matches!(
                    policy.check_url(refused),
                    Err(EgressError::Forbidden { .. })
                ),
                "{refused}"
            );
        }
        for fine in [
            "https://hooks.example.org/kepatuhan",
            "http://203.0.113.9/x",
            "https://[2001:db8::1]/",
        ] {
            assert!(policy.check_url(fine).is_ok(), "{fine}");
        }
        for bad in [
            "ftp://example.org/",
            "not a url",
            "https://",
            "mailto:office@example.org",
        ] {
            assert_eq!(
                policy.check_url(bad).err(),
                Some(EgressError::NotHttp),
                "{bad}"
            );
        }
        let dev = EgressPolicy::parse("127.0.0.1/32, ::1").unwrap();
        assert!(dev.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(dev.check_url("http://[::1]:9000/hook").is_ok());
        assert!(dev.check_url("http://127.0.0.2/hook").is_err());
        assert!(EgressPolicy::parse("127.0.0.1/99").is_err());
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let policy = EgressPolicy::default();
        let refused = policy.resolve("http://localhost:1/").await.unwrap_err();
        assert!(
            matches!(refused, EgressError::Forbidden { .. }),
            "{refused}"
        );
        let allowed = EgressPolicy::parse("127.0.0.1/32,::1/128")
            .unwrap()
            .resolve("http://127.0.0.1:4321/hook")
            .await
            .unwrap();
        assert_eq!(allowed.addresses, ["127.0.0.1:4321".parse().unwrap()]);
    }
}
