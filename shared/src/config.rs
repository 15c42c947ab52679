//! The command-line options every example shares (each with an environment fallback),
//! [`ServerArgs`], and what they mean: for a stream ([`ServerArgs::stream_settings`]), for the
//! server's limits, for TLS. What the server does with each connection is in
//! `connection`, logging in `logging`.
//!
//! ```
//! use clap::Parser;
//! use sse_shared::config::ServerArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! let cli = Cli::parse_from(["app", "--port", "9000", "--retry-ms", "5000"]);
//! assert_eq!(cli.server.port, 9000);
//! assert_eq!(cli.server.stream_settings().retry.as_millis(), 5000);
//! ```
//!
//! A `main` reads them with [`read_options`] (`Cli::parse()` with one difference: a
//! negative number is a value its option refuses by name, not an unknown flag).

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, Command, FromArgMatches};
use rand::RngExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use salvo::conn::rustls::{Keycert, RustlsConfig};

use crate::stream_route::StreamSettings;

/// The default `--max-header-bytes`, and the least hyper accepts.
pub const HEADER_BYTES: usize = 8 * 1024;

/// The TLS certificate or key could not be read or made, or they do not belong together.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(pub String);

/// The options `command` describes (an example's `Cli::command()`, perhaps adjusted),
/// read from the command line and the environment as `Cli::parse()` reads them; on a
/// mistake, prints clap's message naming the option and exits with status 2. Unlike
/// `Cli::parse()`, a value that looks like a negative number is read as the option's
/// value, so `--retry-ms -5` is refused by `--retry-ms`'s own rule, by name, rather than
/// as an unknown argument `-5`.
pub fn read_options<T: FromArgMatches>(command: Command) -> T {
    let mut command = command.mut_args(|arg| {
        let takes_values = arg.get_action().takes_values();
        arg.allow_negative_numbers(takes_values)
    });
    let mut matches = command.get_matches_mut();
    T::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command).exit())
}

/// The longest duration option, in seconds (an hour): past it a value is a mistake,
/// and a huge one would overflow a timer's arithmetic.
pub const MAX_SECS: u64 = 3600;
/// The longest `--retry-ms` and `--drain-spread-ms` (ten minutes).
pub const MAX_RETRY_MS: u64 = 600_000;
/// The shortest `--retry-ms`: under it, clients that lost their stream reconnect in a
/// tight loop.
pub const MIN_RETRY_MS: u64 = 100;

/// An origin as browsers send it, `http(s)://host[:port]` and nothing after, in the
/// form they send it (the URL parser's: lower case, no default port, IPv6 shortened).
/// Written any other way it could never match a browser's `Origin`.
fn origin(text: &str) -> Result<String, String> {
    let refuse = |why: &str| format!("{text:?} is not an origin (http(s)://host[:port]): {why}");
    // The URL parser forgives what an origin may not have: a path, a query, user
    // info, an empty port.
    match text.split_once("://") {
        Some((_, rest)) if !rest.is_empty() && !rest.contains(['/', '?', '#', '@']) => {}
        _ => {
            return Err(refuse(
                "not a scheme and a host, or something after the port",
            ));
        }
    }
    let url = url::Url::parse(text).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme is not http or https"));
    }
    let name_ok = |name: &str| {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    match url.host() {
        Some(url::Host::Domain(name)) if !name_ok(name) => Err(refuse("not a host name")),
        _ if text.ends_with(':') || url.port() == Some(0) => {
            Err(refuse("the port is not 1 to 65535"))
        }
        _ => Ok(url.origin().ascii_serialization()),
    }
}

/// A number of seconds within `range`, as a `Duration`.
fn secs(range: RangeInclusive<u64>) -> impl TypedValueParser<Value = Duration> {
    clap::value_parser!(u64)
        .range(range)
        .map(Duration::from_secs)
}

/// A number of milliseconds within `range`, as a `Duration`.
fn millis(range: RangeInclusive<u64>) -> impl TypedValueParser<Value = Duration> {
    clap::value_parser!(u64)
        .range(range)
        .map(Duration::from_millis)
}

/// A count that must be at least 1 (0 would refuse every stream).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 would refuse every stream; the least is 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A trusted proxy: an address a peer can have (not `0.0.0.0`, `::` or multicast).
fn proxy_address(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text.trim().parse().map_err(|e| format!("{e}"))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(format!("{ip} is never a peer's address"));
    }
    Ok(ip)
}

/// A PEM certificate chain and its private key.
pub type PemPair = (Vec<u8>, Vec<u8>);

/// Address, stream and limit options (flatten into an example's own `clap::Parser`).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the real port is printed).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Reconnect delay sent to clients as `retry:`, in milliseconds.
    #[arg(long = "retry-ms", env = "RETRY_MS", default_value = "3000", value_name = "MS", value_parser = millis(MIN_RETRY_MS..=MAX_RETRY_MS))]
    pub retry: Duration,
    /// Spread each stream's `retry:` at random by up to this many percent either way,
    /// so clients that dropped together do not reconnect together (0: exact).
    #[arg(long, env = "RETRY_JITTER_PCT", default_value_t = 25, value_parser = clap::value_parser!(u8).range(..=90))]
    pub retry_jitter_pct: u8,
    /// Origins (`https://app.example.com`, comma-separated) whose pages may open streams
    /// with credentials and call the POST APIs; others get no CORS headers.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_origins: Vec<String>,
    /// End each stream after about this many seconds (spread like `retry:`), so
    /// long-lived clients rebalance across instances behind a load balancer (0: never).
    #[arg(long = "max-stream-lifetime-secs", env = "MAX_STREAM_LIFETIME_SECS", default_value = "0", value_name = "SECS", value_parser = secs(0..=86_400))]
    pub max_stream_lifetime: Duration,
    /// New streams admitted per second (and at once), server-wide; past it `503` with
    /// a jittered `Retry-After` (0: no limit).
    #[arg(long, env = "MAX_NEW_STREAMS_PER_SEC", default_value_t = 0)]
    pub max_new_streams_per_sec: u32,
    /// Seconds without traffic before a keep-alive comment is sent.
    #[arg(long = "keep-alive-secs", env = "KEEP_ALIVE_SECS", default_value = "15", value_name = "SECS", value_parser = secs(1..=MAX_SECS))]
    pub keep_alive: Duration,
    /// Seconds to wait for streams to close on SIGINT/SIGTERM before exiting anyway.
    #[arg(long = "shutdown-grace-secs", env = "SHUTDOWN_GRACE_SECS", default_value = "5", value_name = "SECS", value_parser = secs(0..=MAX_SECS))]
    pub shutdown_grace: Duration,
    /// On SIGINT/SIGTERM each stream ends at a random moment within the first half of
    /// the grace (at most this long) with a final `retry:` drawn up to this many
    /// milliseconds, so its clients come back spread out (0: all at once).
    #[arg(long = "drain-spread-ms", env = "DRAIN_SPREAD_MS", default_value = "3000", value_name = "MS", value_parser = millis(0..=MAX_RETRY_MS))]
    pub drain_spread: Duration,
    /// Most streams open at once, server-wide; past it new streams get 503.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 10_000, value_parser = at_least_one)]
    pub max_streams: usize,
    /// Most streams open at once from one client address; past it new streams get 429.
    #[arg(long, env = "MAX_STREAMS_PER_IP", default_value_t = 100, value_parser = at_least_one)]
    pub max_streams_per_ip: usize,
    /// Seconds a write to a client may stay blocked before its connection is closed as
    /// too slow (0: never). Idle streams are not affected: only unread data counts.
    #[arg(long = "write-stall-secs", env = "WRITE_STALL_SECS", default_value = "30", value_name = "SECS", value_parser = secs(0..=MAX_SECS))]
    pub write_stall: Duration,
    /// Seconds a whole request body may take to arrive, however steadily it trickles
    /// in; past it `408` (a body that stops for 10 s gets `408` sooner).
    #[arg(long = "body-deadline-secs", env = "BODY_DEADLINE_SECS", default_value = "30", value_name = "SECS", value_parser = secs(1..=MAX_SECS))]
    pub body_deadline: Duration,
    /// The largest request head (request line and headers), in bytes; past it `431`.
    /// Also the most hyper buffers for a connection's writes. Above 8 KiB an idle
    /// stream costs ~5 KiB more (salvo's HTTP/2 detection makes hyper's read buffer
    /// grow to 16 KiB).
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = HEADER_BYTES, value_parser = clap::value_parser!(u32).range(8192..=1 << 20).map(|n| n as usize))]
    pub max_header_bytes: usize,
    /// Proxies whose X-Forwarded-For is believed for per-IP limits (and, in sse-topics,
    /// X-Forwarded-Proto for the hub's URL), comma-separated (e.g. 127.0.0.1 when nginx
    /// runs on the same host).
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = proxy_address)]
    pub trusted_proxies: Vec<IpAddr>,
    /// PEM certificate chain: serve HTTPS, with HTTP/2 (needs --tls-key).
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS, with HTTP/2, under a self-signed certificate made at start (for
    /// trying things locally; browsers will warn).
    #[arg(long, env = "TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
}

impl ServerArgs {
    /// How streams talk to their clients: `--retry-ms`, `--retry-jitter-pct`,
    /// `--keep-alive-secs`.
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            retry: self.retry,
            retry_jitter_pct: self.retry_jitter_pct,
            keep_alive: self.keep_alive,
        }
    }

    /// `duration` spread at random (uniformly) by up to `--retry-jitter-pct` either way.
    fn jittered(&self, duration: Duration) -> Duration {
        crate::stream_route::spread(duration, self.retry_jitter_pct)
    }

    /// This stream's lifetime, if limited: `--max-stream-lifetime-secs`, spread like
    /// `retry:` so that streams opened together do not end together.
    pub fn lifetime(&self) -> Option<Duration> {
        let lifetime = self.max_stream_lifetime;
        (!lifetime.is_zero()).then(|| self.jittered(lifetime))
    }

    /// A stream's drain, drawn when it opens: how long after the shutdown starts it
    /// ends (uniform up to `--drain-spread-ms`, at most half the grace), and the final
    /// `retry:` it sends then (uniform up to `--drain-spread-ms`).
    pub fn drain(&self) -> (Duration, Duration) {
        let spread = self.drain_spread;
        let window = spread.min(self.shutdown_grace / 2);
        let mut rng = rand::rng();
        let end_after = window.mul_f64(rng.random_range(0.0..=1.0));
        (end_after, spread.mul_f64(rng.random_range(0.0..=1.0)))
    }

    /// How long a write may stay blocked before the connection is closed; `None`: never.
    pub fn write_stall(&self) -> Option<Duration> {
        (!self.write_stall.is_zero()).then_some(self.write_stall)
    }

    /// The TLS configuration the options ask for, if any (HTTP/2 and HTTP/1.1 by ALPN).
    pub fn rustls(&self) -> Result<Option<RustlsConfig>, TlsError> {
        let pem = self.tls_pem()?;
        Ok(pem.map(|(cert, key)| RustlsConfig::new(Keycert::new().cert(cert).key(key))))
    }

    /// The PEM certificate chain and key the options ask for, if any: read from the
    /// files (and checked: PEM, and a key that belongs to the certificate, or an error
    /// naming the option and file), or a self-signed certificate made now.
    pub fn tls_pem(&self) -> Result<Option<PemPair>, TlsError> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let read = |path: &PathBuf| {
                std::fs::read(path)
                    .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
            };
            let pair = (read(cert)?, read(key)?);
            check_pair(&pair, cert, key)?;
            return Ok(Some(pair));
        }
        if !self.tls_self_signed {
            return Ok(None);
        }
        let names = vec!["localhost".into(), "127.0.0.1".into(), self.host.clone()];
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError(format!("cannot make a self-signed certificate: {e}")))?;
        let key = made.signing_key.serialize_pem().into_bytes();
        Ok(Some((made.cert.pem().into_bytes(), key)))
    }
}

/// Whether `pair` is a PEM certificate chain and the private key of its first
/// certificate: rustls would take any pair at start and then fail every handshake.
fn check_pair((cert_pem, key_pem): &PemPair, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let (cert, key) = (cert.display(), key.display());
    let chain = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>();
    let chain = chain.map_err(|e| TlsError(format!("--tls-cert {cert} is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "--tls-cert {cert} holds no PEM certificate"
        )));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError(format!("--tls-key {key} holds no PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    match CertifiedKey::from_der(chain, private, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError(format!(
            "--tls-key {key} is not the key of the certificate in --tls-cert {cert}"
        ))),
        Err(e) => Err(TlsError(format!("--tls-key {key} cannot be used: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{ServerArgs, origin};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn header_bytes_are_what_hyper_accepts_up_to_a_mebibyte() {
        let parse = |n: &str| Cli::try_parse_from(["x", "--max-header-bytes", n]);
        let bytes = |n| parse(n).map(|cli| cli.server.max_header_bytes).ok();
        assert_eq!(bytes("8192"), Some(8192));
        assert_eq!(bytes("1048576"), Some(1 << 20));
        for bad in ["8191", "0", "1048577", "-1", "8k"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for ok in [
            "https://app.example.com",
            "http://127.0.0.1:5173",
            "http://[::1]:8080",
        ] {
            assert_eq!(origin(ok).as_deref(), Ok(ok));
        }
        // Written as a browser sends it: lower case, no default port.
        for (written, sent) in [
            ("https://A.EXAMPLE", "https://a.example"),
            ("HTTPS://App.Example.com:443", "https://app.example.com"),
            ("http://a.example:80", "http://a.example"),
            ("http://a.example:443", "http://a.example:443"),
            ("http://[2001:DB8:0::1]:80", "http://[2001:db8::1]"),
            // Browsers send a non-ASCII name in its ASCII (punycode) form.
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ] {
            assert_eq!(origin(written).as_deref(), Ok(sent), "{written}");
        }
        for bad in [
            "app.example.com",
            "https://",
            "https://a.example/",
            "https://a.example/x",
            "ftp://a.example",
            "https://a b",
            "https://u@a.example",
            "https://a.example?x",
            "https://a.example:65536",
            "https://a.example:0",
            "https://a.example:+80",
            "https://a.example:",
            "https://a_b.example",
            "https://[not-v6]",
            "https://[::1]x",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
