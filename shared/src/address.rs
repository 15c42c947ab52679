//! The client's address, as the per-address limits count it: the peer, or behind
//! `--trusted-proxies` the address `X-Forwarded-For` names, read so that a client
//! cannot choose it; IPv6 counted per /64.
//!
//! ```
//! use std::net::IpAddr;
//! use salvo::Request;
//! use sse_shared::address::{client_ip, limit_key};
//!
//! let proxy: IpAddr = "10.0.0.1".parse()?;
//! let mut req = Request::new();
//! *req.remote_addr_mut() = std::net::SocketAddr::from((proxy, 40000)).into();
//! // The client made up the first entry; the proxy appended the real one.
//! let forwarded = "6.6.6.6, 203.0.113.7".parse()?;
//! req.headers_mut().insert("x-forwarded-for", forwarded);
//! assert_eq!(client_ip(&req, &[proxy]), Some("203.0.113.7".parse()?));
//! // Without trusting the proxy, the peer is the client.
//! assert_eq!(client_ip(&req, &[]), Some(proxy));
//! // IPv6 clients are counted per /64.
//! assert_eq!(limit_key("2001:db8::1".parse()?), "2001:db8::".parse::<IpAddr>()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, Ipv6Addr};

use salvo::Request;

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

#[cfg(test)]
mod tests {
    use super::*;

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

/// The address a stream's client is counted under (IPv6 by its /64), put in the `Depot`
/// by the `Streams` hoop for the stream's handler: the key for any other per-client
/// bound. `None`: a peer without an IP.
#[derive(Clone, Copy, Debug)]
pub struct StreamClient(pub Option<IpAddr>);

/// The proxies whose `X-Forwarded-For` is believed (`--trusted-proxies`), put in the
/// `Depot` by the production stack (`routes::service`) for [`client_of`].
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpAddr>);

/// The client's address as [`client_ip`] reads it, with the proxies the `Depot` names
/// (none without the production stack: the socket's peer, the safe default).
pub fn client_of(req: &Request, depot: &salvo::Depot) -> Option<IpAddr> {
    let trusted = depot.get_typed::<TrustedProxies>().map(|t| t.0.as_slice());
    client_ip(req, trusted.unwrap_or_default())
}
