//! Connection limits for long-lived streams: one server-wide cap and one per client
//! address.
//!
//! A stream holds its [`StreamPermit`] for as long as it is open; dropping the permit
//! (the client went away, the stream ended) gives the slot back. This is why salvo's
//! `max_concurrency` hoop is not enough: it frees its slot when the handler returns,
//! which for a stream is right away.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use salvo::Request;
use salvo::http::StatusCode;

use crate::error::ApiError;

/// The client's address: the peer's, or, when the peer is one of `trusted_proxies`, the
/// first `X-Forwarded-For` entry from the right that is not a trusted proxy (entries
/// further left can be made up by the client). Entries may be `IP`, `IP:port`, `[IPv6]`
/// or `[IPv6]:port`, as proxies write them. An entry that does not parse (`unknown`, a
/// name, garbage) ends the walk: the client is then counted under the proxy that wrote
/// it, never under a made-up entry further left. IPv4-mapped IPv6 addresses (how a
/// dual-stack `::` listener sees IPv4 peers) are compared as the IPv4 addresses they are.
pub fn client_ip(req: &Request, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.remote_addr().ip()?.to_canonical();
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|p| p.to_canonical() == *ip);
    if !trusted(&peer) {
        return Some(peer);
    }
    let headers = req.headers().get_all("x-forwarded-for");
    let mut entries: Vec<&str> = Vec::new();
    for value in &headers {
        // A header that is not text cannot be read past: the proxy's own address counts.
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        entries.extend(value.split(','));
    }
    // `proxy`: the trusted hop that wrote the entry being read.
    let mut proxy = peer;
    for entry in entries.into_iter().rev() {
        match forwarded_ip(entry) {
            Some(ip) if trusted(&ip) => proxy = ip,
            Some(ip) => return Some(ip),
            None => return Some(proxy),
        }
    }
    Some(proxy)
}

/// One `X-Forwarded-For` entry: `IP`, `IP:port`, `[IPv6]` or `[IPv6]:port`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // `[IPv6]`, `IPv4:port` and `[IPv6]:port` are all socket-address or bracket forms.
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// What a client is counted under: its IPv4 address, or the /64 of its IPv6 address
/// (one host usually has a whole /64, so counting per address would give it them all).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Which limit refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// Every one of the server's stream slots is taken.
    #[error("The server has reached its limit of {0} open streams; try again later.")]
    ServerFull(usize),
    /// This address holds as many streams as it may.
    #[error("This address has reached its limit of {0} open streams; close one first.")]
    PerIp(usize),
}

impl LimitExceeded {
    /// The `reason` label of `sse_rejected_streams_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::ServerFull(_) => "server-full",
            Self::PerIp(_) => "per-ip-limit",
        }
    }
}

impl From<LimitExceeded> for ApiError {
    fn from(refusal: LimitExceeded) -> Self {
        let (status, code) = match refusal {
            LimitExceeded::ServerFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "server-full"),
            LimitExceeded::PerIp(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-streams"),
        };
        ApiError::new(status, code, refusal.to_string())
    }
}

/// Counts open streams, in all and per client address.
#[derive(Debug, Clone)]
pub struct StreamLimiter {
    max_total: usize,
    max_per_ip: usize,
    open: Arc<Mutex<OpenStreams>>,
}

#[derive(Debug, Default)]
struct OpenStreams {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl StreamLimiter {
    /// At most `max_total` streams in all and `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            open: Arc::default(),
        }
    }

    /// Takes a slot for a stream from `ip` (counted by [`limit_key`]; `None`, a peer
    /// without an IP: only the global limit applies).
    pub fn try_acquire(&self, ip: Option<IpAddr>) -> Result<StreamPermit, LimitExceeded> {
        let mut open = self.open.lock();
        if open.total >= self.max_total {
            return Err(LimitExceeded::ServerFull(self.max_total));
        }
        let ip = ip.map(limit_key);
        if let Some(ip) = ip {
            // Looked up before it is counted: a refused address leaves no entry behind.
            if open.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
                return Err(LimitExceeded::PerIp(self.max_per_ip));
            }
            *open.per_ip.entry(ip).or_default() += 1;
        }
        open.total += 1;
        Ok(StreamPermit {
            open: Arc::clone(&self.open),
            ip,
        })
    }
}

/// One open stream's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<Mutex<OpenStreams>>,
    ip: Option<IpAddr>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        open.total -= 1;
        if let Some(ip) = self.ip
            && let Some(count) = open.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                // Keep the map as small as the set of addresses with open streams.
                open.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn per_ip_then_global_limits_apply_and_permits_come_back() {
        let limiter = StreamLimiter::new(3, 2);
        let a1 = limiter.try_acquire(Some(A));
        let a2 = limiter.try_acquire(Some(A));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            limiter.try_acquire(Some(A)).err(),
            Some(LimitExceeded::PerIp(2))
        );
        let b1 = limiter.try_acquire(Some(B));
        assert!(b1.is_ok());
        assert_eq!(
            limiter.try_acquire(Some(B)).err(),
            Some(LimitExceeded::ServerFull(3))
        );
        drop(a1);
        assert!(
            limiter.try_acquire(Some(B)).is_ok(),
            "the freed slot is reusable"
        );
        drop((a2, b1));
        assert_eq!(limiter.open.lock().total, 0);
        assert!(limiter.open.lock().per_ip.is_empty());
    }

    #[test]
    fn a_refused_address_leaves_no_entry() {
        let limiter = StreamLimiter::new(10, 0);
        for last in 0..=255 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, last));
            assert_eq!(
                limiter.try_acquire(Some(ip)).err(),
                Some(LimitExceeded::PerIp(0))
            );
        }
        assert!(limiter.open.lock().per_ip.is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = StreamLimiter::new(10, 2);
        let host = |last: u16| {
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 7, 0, 0, 0, last,
            )))
        };
        let (first, second) = (limiter.try_acquire(host(1)), limiter.try_acquire(host(2)));
        assert!(first.is_ok() && second.is_ok());
        // A third address in the same /64 is the same client.
        assert_eq!(
            limiter.try_acquire(host(3)).err(),
            Some(LimitExceeded::PerIp(2))
        );
        let other = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1)));
        assert!(limiter.try_acquire(other).is_ok());

        let mapped = Some(IpAddr::V6(
            std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped(),
        ));
        let (a, b) = (limiter.try_acquire(Some(A)), limiter.try_acquire(mapped));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            limiter.try_acquire(Some(A)).err(),
            Some(LimitExceeded::PerIp(2))
        );
    }

    /// The client `client_ip` finds for a request from `peer` with these
    /// `X-Forwarded-For` headers, behind the trusted proxy 127.0.0.1 and 10.0.0.9.
    fn client_behind(peer: &str, forwarded: &[&str]) -> Option<IpAddr> {
        let mut req = Request::new();
        let peer: std::net::SocketAddr = format!("{peer}:1234").parse().ok()?;
        *req.remote_addr_mut() = peer.into();
        for value in forwarded {
            let value = salvo::http::HeaderValue::from_str(value).ok()?;
            req.headers_mut().append("x-forwarded-for", value);
        }
        let trusted = ["127.0.0.1".parse().ok()?, "10.0.0.9".parse().ok()?];
        client_ip(&req, &trusted)
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_name_the_client() {
        let ip = |text: &str| text.parse::<IpAddr>().ok();
        for (forwarded, client) in [
            ("5.5.5.5", "5.5.5.5"),
            ("5.5.5.5:40001", "5.5.5.5"),
            (" 5.5.5.5:40001 ", "5.5.5.5"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:40001", "2001:db8::1"),
            ("::ffff:5.5.5.5", "5.5.5.5"),
            ("[::ffff:5.5.5.5]:1", "5.5.5.5"),
        ] {
            // A made-up entry to the left never wins over the proxy's own entry.
            let header = format!("6.6.6.6, {forwarded}");
            assert_eq!(
                client_behind("127.0.0.1", &[&header]),
                ip(client),
                "{header}"
            );
        }
    }

    #[test]
    fn an_entry_that_does_not_parse_ends_the_walk_at_the_proxy_that_wrote_it() {
        let ip = |text: &str| text.parse::<IpAddr>().ok();
        for forwarded in [
            "unknown",
            "",
            "host.example",
            "5.5.5.5:port",
            "[2001:db8::1",
            "_hidden",
        ] {
            let header = format!("6.6.6.6, {forwarded}");
            assert_eq!(
                client_behind("127.0.0.1", &[&header]),
                ip("127.0.0.1"),
                "{header}"
            );
        }
        // Behind two trusted hops, the hop that wrote the bad entry is the client's key.
        let two_hops = ["6.6.6.6, unknown, 10.0.0.9"];
        assert_eq!(client_behind("127.0.0.1", &two_hops), ip("10.0.0.9"));
        // Trusted entries are walked past; the first untrusted one is the client.
        let chain = ["6.6.6.6, 5.5.5.5", "10.0.0.9:80, 127.0.0.1"];
        assert_eq!(client_behind("127.0.0.1", &chain), ip("5.5.5.5"));
        // A peer that is not a trusted proxy is the client, whatever it forwards.
        assert_eq!(client_behind("8.8.8.8", &["5.5.5.5"]), ip("8.8.8.8"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(client_behind("127.0.0.1", &[]), ip("127.0.0.1"));
    }
}
