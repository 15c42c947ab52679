//! Apps started in this process ([`TestApp`], on `salvo::Server` as every `main` runs it), and the test defaults of [`ServerArgs`].

#[allow(unused_imports)]
use super::*;

/// A server started in this process by [`server::serve`], the code every example's
/// `main` runs, with a channel in place of the signal.
pub struct RunningServer {
    addr: std::net::SocketAddr,
    scheme: String,
    grace: Duration,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Binds and serves `app` as `args` say; returns once it accepts connections.
    pub async fn start(args: &ServerArgs, streams: Streams, app: Router) -> TestResult<Self> {
        let (bound, listening) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (args, grace) = (args.clone(), args.shutdown_grace);
        let task = tokio::spawn(async move {
            let listening = move |scheme: &str, addr| {
                let _ = bound.send((scheme.to_owned(), addr));
            };
            let stop = async move {
                let _ = stopped.await;
            };
            server::serve(&args, streams, app, listening, stop).await
        });
        match within(WAIT, "the server to listen", listening).await? {
            Ok((scheme, addr)) => Ok(Self {
                addr,
                scheme,
                grace,
                stop,
                task,
            }),
            // It never listened: say why.
            Err(_) => match within(WAIT, "the server's start error", task).await?? {
                Err(e) => Err(e.into()),
                Ok(()) => Err("the server stopped before it listened".into()),
            },
        }
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://host:port`, or `https://` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Does what a signal does (ends every stream, then a graceful stop), and waits at
    /// most `--shutdown-grace-secs` for the server to finish. Returns whether it did.
    pub async fn shut_down(self) -> bool {
        let Self {
            grace,
            stop,
            mut task,
            ..
        } = self;
        let _ = stop.send(());
        if tokio::time::timeout(grace, &mut task).await.is_ok() {
            return true;
        }
        task.abort();
        let _ = task.await;
        false
    }
}

impl Default for ServerArgs {
    /// The options' defaults (as `--help` shows them), on port 0 (a free port), as tests want.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            retry: Duration::from_millis(3000),
            body_deadline: crate::body_deadline::BODY_DEADLINE,
            retry_jitter_pct: 25,
            cors_origins: Vec::new(),
            max_header_bytes: crate::config::HEADER_BYTES,
            max_new_streams_per_sec: 0,
            drain_spread: Duration::from_millis(3000),
            max_stream_lifetime: Duration::from_secs(0),
            keep_alive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
            max_streams: 10_000,
            max_streams_per_ip: 100,
            write_stall: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
        }
    }
}

/// An app started in this process on `127.0.0.1:0`.
pub struct TestApp {
    /// The running server.
    pub server: RunningServer,
    /// Its streams (settings, limits, metrics, shutdown).
    pub streams: Streams,
}

impl TestApp {
    /// Starts the router that `app` builds, with these options (`port` is ignored: 0).
    pub async fn start(args: ServerArgs, app: impl FnOnce(&Streams) -> Router) -> TestResult<Self> {
        let args = ServerArgs {
            host: "127.0.0.1".into(),
            port: 0,
            ..args
        };
        let streams = Streams::from_args(&args);
        let router = app(&streams);
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// Serves `router` with ready-made `streams` (when something else, such as a hub
    /// fed by Redis, had to be built from them first).
    pub async fn serve(args: ServerArgs, streams: Streams, router: Router) -> TestResult<Self> {
        let args = ServerArgs {
            host: "127.0.0.1".into(),
            port: 0,
            ..args
        };
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// Like [`TestApp::serve`], on the port `args` names (to restart on the same port).
    pub async fn serve_at(args: ServerArgs, streams: Streams, router: Router) -> TestResult<Self> {
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// The value of an unlabelled metric on `/metrics`, e.g. `sse_open_streams`.
    pub async fn metric(&self, name: &str) -> TestResult<f64> {
        metric(&self.server.url(), name).await
    }
}

/// Serves `router` on `127.0.0.1:0` on a bare `salvo::Server`, without the production
/// stack (another app's page, an identity provider's JWKS); its address. It serves
/// until the test's runtime ends.
pub async fn serve_plain(router: Router) -> TestResult<std::net::SocketAddr> {
    use salvo::conn::{Acceptor, Listener};
    let acceptor = salvo::conn::TcpListener::new("127.0.0.1:0").bind().await;
    let holding = acceptor.holdings().first().ok_or("no address")?;
    let addr = holding.local_addr.clone().into_std().ok_or("no address")?;
    tokio::spawn(salvo::Server::new(acceptor).serve(router));
    Ok(addr)
}
