//! A TCP proxy that injects faults once ([`FaultyProxy`], [`Fault`]).

#[allow(unused_imports)]
use super::*;

/// What [`FaultyProxy`] does, once, to the command that carries its marker.
#[derive(Clone, Copy)]
pub enum Fault {
    /// Holds it (and whatever follows on its connection) this long.
    Stall(Duration),
    /// Holds it and every command on every connection, until this long from then: the
    /// client's Redis goes quiet (a partition, or the client's process stalled).
    Silence(Duration),
    /// Closes its connection instead of passing it on.
    Cut,
}

#[derive(Default)]
struct Faults {
    armed: Option<(&'static [u8], Fault)>,
    silent_until: Option<tokio::time::Instant>,
}

type Shared = std::sync::Arc<parking_lot::Mutex<Faults>>;

/// A TCP proxy in front of Redis that, when armed, stalls, silences or cuts the
/// connection the next time a command carrying the marker passes: a Redis that is slow
/// or lost at the worst moment.
pub struct FaultyProxy {
    /// `redis://` URL of the proxy.
    pub url: String,
    faults: Shared,
}

impl FaultyProxy {
    /// A proxy in front of `redis`, passing everything until armed.
    pub async fn start(redis: &RedisServer) -> TestResult<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let upstream = redis.url().trim_start_matches("redis://").to_owned();
        let faults = Shared::default();
        let relays = std::sync::Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = std::sync::Arc::clone(&relays);
                tokio::spawn(relay(client, upstream.clone(), faults));
            }
        });
        Ok(Self { url, faults })
    }

    /// The next command carrying `marker` (`b"*"`: any command) meets `fault`.
    pub fn arm(&self, marker: &'static [u8], fault: Fault) {
        self.faults.lock().armed = Some((marker, fault));
    }

    /// Whether the armed fault has struck.
    pub fn has_struck(&self) -> bool {
        self.faults.lock().armed.is_none()
    }
}

async fn relay(client: tokio::net::TcpStream, upstream: String, faults: Shared) {
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match tokio::io::AsyncReadExt::read(&mut from_client, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let (fault, silent_until) = {
            let mut faults = faults.lock();
            let fault = match faults.armed {
                Some((marker, _)) if chunk.windows(marker.len()).any(|w| w == marker) => {
                    faults.armed.take().map(|(_, fault)| fault)
                }
                _ => None,
            };
            if let Some(Fault::Silence(wait)) = fault {
                faults.silent_until = Some(tokio::time::Instant::now() + wait);
            }
            (fault, faults.silent_until)
        };
        match fault {
            Some(Fault::Cut) => return,
            Some(Fault::Stall(wait)) => tokio::time::sleep(wait).await,
            _ => {}
        }
        if let Some(until) = silent_until {
            tokio::time::sleep_until(until).await;
        }
        if tokio::io::AsyncWriteExt::write_all(&mut to_server, chunk)
            .await
            .is_err()
        {
            return;
        }
    }
}
