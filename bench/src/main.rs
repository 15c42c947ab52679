//! `cargo run -p bench --release -- all`: fan-out throughput, latency and memory per
//! connection, ours side by side with peers, in one run on one machine. Writes
//! `bench/results/<date>.md` and `<date>.svg`.

mod hostile;
mod hubs;
mod lean;
mod load;
mod one_per_write;
mod peers;
mod per_event;
mod publishers;
mod report;
mod servers;
mod waves;

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use load::{
    BenchResult, Publisher, Tally, Target, close_clients, gate, join_chat, lost, open_clients,
};
use servers::Server;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Parser)]
#[command(about = "SSE fan-out benchmark: ours against peers, on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole suite: every server, every load, `--runs` times; writes the results.
    All {
        /// Runs of each measurement (the medians are reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds each measurement lasts.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Small loads, one run: checks the harness in a minute.
        #[arg(long)]
        quick: bool,
        /// Where the results go.
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// Server CPU per delivered event, in both regimes, at 1,000, 5,000 and 19,000
    /// clients: ours on both serving paths, axum and the ceiling, in alternating rounds;
    /// writes `<out>/<date>-per-event.md`.
    PerEvent {
        #[arg(long, default_value_t = 2)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// 100 and 500 clients, one run: checks the harness.
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// One event per write (issue 45): ours, the ceiling, axum, nchan and Centrifugo
    /// (install them first: bench/install-nchan.sh, bench/install-centrifugo.sh) at
    /// 1,000 and 5,000 clients, 1 and 10 events a
    /// second, CPU split into user and system time, alternating rounds; writes
    /// `<out>/<date>-one-per-write.md`.
    OnePerWrite {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds measured at 10 events a second (twice that at 1).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// Every hub side by side (issue 44): ours (sse-resume's hub and sse-topics), nchan,
    /// Centrifugo and Mercure's hub on local and on bolt, broadcasting at a fixed rate to
    /// 1,000, 5,000 and 19,000 subscribers, alternating rounds; writes
    /// `<out>/<date>-peers.md` and `<date>-peers.svg`.
    Peers {
        #[arg(long, default_value_t = 2)]
        runs: usize,
        /// Seconds measured at 10 events a second (five times that at 2).
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// 200 subscribers, one run: checks the harness.
        #[arg(long)]
        quick: bool,
        /// Gated instead (at most 4 events ahead of the average subscriber) at 1,000 and
        /// 5,000; writes `<out>/<date>-peers-gated.md`.
        #[arg(long)]
        gated: bool,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// Many publishers (issue 44): 500 publishers, each to its own topic at 2 and at 10
    /// publishes a second, 5,000 subscribers over the topics; sse-topics, nchan,
    /// Centrifugo and Mercure's hub on local and on bolt, alternating rounds; publish
    /// answer times, CPU per event, loss; writes `<out>/<date>-publishers.md`.
    Publishers {
        /// Only these servers (every hub with topics when none is given).
        #[arg(long = "server")]
        servers: Vec<Server>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// 50 publishers to 500 subscribers, one run: checks the harness.
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// sse-topics against Mercure's own hub (build it first: bench/build-mercure.sh) at
    /// 1,000 and 5,000 subscribers with three matchers each, both regimes, alternating
    /// rounds; writes `<out>/<date>-hubs.md`.
    Hubs {
        #[arg(long, default_value_t = 2)]
        runs: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// 200 subscribers, one run: checks the harness.
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// Hostile round three's reproductions against sse-topics binaries (`NAME=PATH`,
    /// e.g. the one before the fixes and the one after), each scenario in a fresh
    /// process; writes `<out>/<date>-hostile.md`.
    Hostile {
        #[arg(long = "binary", required = true, value_parser = name_and_path)]
        binaries: Vec<(String, String)>,
        /// Only the scenarios with these keys (`refused-w`, `refused-p`, `held-w`,
        /// `held-p`, `cache`, `announcements`, `replay`, `flush`, `accepted`,
        /// `replay-memory`).
        #[arg(long)]
        only: Vec<String>,
        #[arg(long, default_value = "bench/results")]
        out: String,
    },
    /// One per-event CPU measurement: gated on delivery (`--window`), or at `--rate`.
    Cpu {
        server: Server,
        #[arg(long)]
        clients: usize,
        /// Events a second to every client; without it, the publisher is gated.
        #[arg(long)]
        rate: Option<u64>,
        /// Gated: the most events the publisher runs ahead of the average client.
        #[arg(long, default_value_t = 4)]
        window: u64,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Serves one server (the suite runs each in its own process).
    Serve {
        server: Server,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Ours: events kept in the history.
        #[arg(long, default_value_t = 4096)]
        history: usize,
    },
    /// One closed-loop measurement: the most events a second delivered to N clients.
    ClosedLoop {
        server: Server,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Does memory come back? `--waves` of `--clients` streams against one server
    /// process (each wave opens them, publishes 20 events, closes them all); prints
    /// the RSS with the streams open and `--settle-secs` after they closed. Build with
    /// `--features jemalloc` or `mimalloc` to try another allocator.
    Waves {
        server: Server,
        #[arg(long, default_value_t = 5)]
        waves: usize,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 12)]
        settle_secs: u64,
    },
    /// One fixed-rate measurement: latency at an offered load.
    FixedRate {
        server: Server,
        #[arg(long)]
        clients: usize,
        /// Events a second (each goes to every client).
        #[arg(long)]
        rate: u64,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

/// `NAME=PATH`, as `--binary` takes it.
fn name_and_path(text: &str) -> Result<(String, String), String> {
    let (name, path) = text.split_once('=').ok_or("expected NAME=PATH")?;
    Ok((name.to_owned(), path.to_owned()))
}

#[cfg(all(feature = "jemalloc", not(feature = "dhat")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc"), not(feature = "dhat")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "dhat")]
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    // Written to dhat-heap.json when main returns (`bench serve` on SIGTERM).
    #[cfg(feature = "dhat")]
    let _profiler = dhat::Profiler::new_heap();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let cli = Cli::parse();
    // Servers get both cores' worth of threads; the load generator too. They share the
    // machine, as the README's figures say.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: BenchResult<()> = runtime.block_on(async {
        match cli.command {
            Cmd::Serve {
                server,
                port,
                history,
            } => servers::serve(server, port, history)
                .await
                .map_err(|e| e.to_string().into()),
            Cmd::ClosedLoop {
                server,
                clients,
                seconds,
            } => {
                let result = closed_loop(server, clients, Duration::from_secs(seconds)).await?;
                println!("{result:?}");
                Ok(())
            }
            Cmd::FixedRate {
                server,
                clients,
                rate,
                seconds,
            } => {
                let result =
                    fixed_rate(server, clients, rate, Duration::from_secs(seconds)).await?;
                println!("{result:?}");
                Ok(())
            }
            Cmd::PerEvent {
                runs,
                seconds,
                quick,
                out,
            } => per_event::suite(runs, seconds, quick, &out).await,
            Cmd::Hubs {
                runs,
                seconds,
                quick,
                out,
            } => hubs::suite(runs, seconds, quick, &out).await,
            Cmd::Peers {
                runs,
                seconds,
                quick,
                gated,
                out,
            } => peers::suite(runs, seconds, quick, gated, &out).await,
            Cmd::Publishers {
                servers,
                runs,
                seconds,
                quick,
                out,
            } => publishers::suite(&servers, runs, seconds, quick, &out).await,
            Cmd::OnePerWrite { runs, seconds, out } => {
                one_per_write::suite(runs, seconds, &out).await
            }
            Cmd::Hostile {
                binaries,
                only,
                out,
            } => hostile::run(&binaries, &only, &out).await,
            Cmd::Cpu {
                server,
                clients,
                rate,
                window,
                seconds,
            } => {
                let regime = rate.map_or(per_event::Regime::Gated(window), per_event::Regime::Rate);
                let result =
                    per_event::measure(server, clients, regime, Duration::from_secs(seconds))
                        .await?;
                println!("{result:?}");
                Ok(())
            }
            Cmd::Waves {
                server,
                waves: count,
                clients,
                settle_secs,
            } => {
                let settle = Duration::from_secs(settle_secs);
                let result = waves::run(server, count, clients, settle).await?;
                println!("{}", waves::report(&result, clients));
                Ok(())
            }
            Cmd::All {
                runs,
                seconds,
                quick,
                out,
            } => report::all(runs, Duration::from_secs(seconds), quick, &out).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A server under test, in its own process.
pub struct ServerProcess {
    child: Child,
    pub target: Target,
    /// sse-chat's member, online while this is open.
    _member: Option<tokio::net::TcpStream>,
    /// Mercure's configuration folder, removed when dropped.
    dir: Option<std::path::PathBuf>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Waits (30 s at most) until a server started as its own binary accepts connections.
async fn listening(addr: SocketAddr, what: &str) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen within 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Every hub subscriber's three matchers: two topics no update has, and the URL
/// pattern every update matches (one topic per update, under [`HUB_TOPICS`]).
const HUB_STREAM: &str = "/.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fauthors%2F1&match=https%3A%2F%2Fexample.com%2Freviews%2F1&match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid";
const HUB_TOPICS: &str = "https://example.com/books/";

/// A topic hub's target: [`HUB_STREAM`] for anonymous subscribers, and a publisher's
/// token for every topic (an hour).
fn hub_target(target: &mut Target) -> BenchResult<()> {
    use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};
    let claims = serde_json::json!({
        "exp": unix_now() + 3600,
        "iss": servers::HUB_ISSUER,
        "aud": servers::HUB_AUDIENCE,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}],
    });
    let token = sign(servers::HUB_SECRET.as_bytes(), &claims)?;
    target.stream_path = HUB_STREAM.to_owned();
    target.hub = Some((HUB_TOPICS, token));
    Ok(())
}

/// Starts a peer's process (quiet but for its errors; killed with its handle) and
/// waits until it listens on `addr`.
async fn start_peer(command: &mut Command, addr: SocketAddr, what: &str) -> BenchResult<Child> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    listening(addr, what).await?;
    Ok(child)
}

/// Centrifugo's stream path for a subscriber of `channel`: a connection token (HS256,
/// an hour) whose `channels` claim subscribes its holder, in `cf_connect`.
fn centrifugo_stream(channel: &str) -> BenchResult<String> {
    let claims = serde_json::json!({
        "sub": "bench",
        "exp": sse_topics::auth::unix_now() + 3600,
        "channels": [channel],
    });
    let token = sse_topics::auth::sign(servers::HUB_SECRET.as_bytes(), &claims)?;
    let connect = serde_json::json!({ "token": token }).to_string();
    let connect: String = url::form_urlencoded::byte_serialize(connect.as_bytes()).collect();
    Ok(format!("/connection/uni_sse?cf_connect={connect}"))
}

impl ServerProcess {
    pub async fn spawn(server: Server) -> BenchResult<Self> {
        if server == Server::Mercure {
            return Self::mercure(false).await;
        }
        if server == Server::MercureBolt {
            return Self::mercure(true).await;
        }
        if server == Server::Nchan {
            return Self::nchan().await;
        }
        if server == Server::Centrifugo {
            return Self::centrifugo().await;
        }
        let name = clap::ValueEnum::to_possible_value(&server)
            .map(|v| v.get_name().to_owned())
            .ok_or("no name")?;
        let mut command = Command::new(std::env::current_exe()?);
        // `BENCH_SERVER_THREADS=N`: the server's runtime with N workers (tokio's
        // `TOKIO_WORKER_THREADS`), the load generator's untouched.
        if let Ok(threads) = std::env::var("BENCH_SERVER_THREADS") {
            command.env("TOKIO_WORKER_THREADS", threads);
        }
        let mut child = command
            .args(["serve", &name, "--port", "0"])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await??;
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .parse()?;
        let mut target = Target {
            addr,
            stream_path: "/events".to_owned(),
            publish_path: server.publish_path().to_owned(),
            bearer: None,
            hub: None,
            api_key: None,
        };
        let mut member = None;
        if server == Server::Chat {
            // Every client is a tab of one member, so nobody's join goes to everyone.
            let (token, stream) = join_chat(addr).await?;
            target.stream_path = "/chat/events".to_owned();
            target.bearer = Some(token);
            member = Some(stream);
        }
        if server == Server::Topics {
            hub_target(&mut target)?;
        }
        Ok(Self {
            child,
            target,
            _member: member,
            dir: None,
        })
    }

    /// Mercure's hub (env `MERCURE_HUB`, default `target/mercure-hub`, which
    /// `bench/build-mercure.sh` builds) on a free port, configured as sse-topics is
    /// here: plain HTTP, HS256 tokens from [`servers::HUB_ISSUER`] for
    /// [`servers::HUB_AUDIENCE`], anonymous subscribers, no subscriptions API; its
    /// `local` transport (no history), or with `bolt` its documented default: BoltDB in
    /// a file, keeping as many updates as ours (its `cleanup_frequency` default).
    async fn mercure(bolt: bool) -> BenchResult<Self> {
        let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/mercure-hub");
        let binary = std::env::var("MERCURE_HUB").unwrap_or_else(|_| default.to_owned());
        if !std::path::Path::new(&binary).exists() {
            return Err(format!(
                "{binary} not found: build it with bench/build-mercure.sh MIRROR (a dunglas/mercure snapshot)"
            )
            .into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("bench-mercure-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let transport = match bolt {
            true => format!(
                "\t\ttransport bolt {{\n\t\t\tpath {}\n\t\t\tsize {}\n\t\t}}\n",
                dir.join("mercure.db").display(),
                servers::HUB_HISTORY
            ),
            false => "\t\ttransport local\n".to_owned(),
        };
        let config = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n\tlog {{\n\t\tlevel ERROR\n\t}}\n}}\n\
             http://:{port} {{\n\tbind 127.0.0.1\n\tmercure {{\n\t\tissuer {issuer} {{\n\
             \t\t\tpublisher {{\n\t\t\t\tjwt \"{key}\" HS256\n\t\t\t}}\n\
             \t\t\tsubscriber {{\n\t\t\t\tjwt \"{key}\" HS256\n\t\t\t}}\n\t\t}}\n\
             {transport}\t\tresource_identifier {audience}\n\t\tanonymous\n\t}}\n}}\n",
            issuer = servers::HUB_ISSUER,
            key = servers::HUB_SECRET,
            audience = servers::HUB_AUDIENCE,
        );
        let caddyfile = dir.join("Caddyfile");
        std::fs::write(&caddyfile, config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(&binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&caddyfile)
            .args(["--adapter", "caddyfile"])
            .env("XDG_DATA_HOME", &dir)
            .env("XDG_CONFIG_HOME", &dir);
        let child = start_peer(&mut command, addr, "Mercure's hub").await?;
        let mut target = Target {
            addr,
            stream_path: String::new(),
            publish_path: Server::Mercure.publish_path().to_owned(),
            bearer: None,
            hub: None,
            api_key: None,
        };
        hub_target(&mut target)?;
        Ok(Self {
            child,
            target,
            _member: None,
            dir: Some(dir),
        })
    }

    /// nchan in one nginx process (`master_process off`: the process measured is the
    /// one that serves), on a free port: `GET /events` subscribes (`nchan_subscriber
    /// eventsource`), `POST /publish` publishes, one channel whose message buffer holds
    /// as many messages as our history (1,000, for an hour); the same for a channel
    /// named by the query (`?channel=`) at `/topic/events` and `/topic/publish`.
    /// `worker_connections` is past the open-files limit on purpose: nchan takes
    /// connection slots it holds no descriptor for, and at 19,800 nginx began reusing
    /// connections at 18,561 streams (its log: "worker_connections are not enough").
    /// `keepalive_requests` is raised from nginx's 1,000: past it nginx closes a
    /// publisher's keep-alive connection, dropping the publishes pipelined behind (a
    /// gated run stalled at the 1,001st event); the other servers never close it.
    async fn nchan() -> BenchResult<Self> {
        let module = "/usr/lib/nginx/modules/ngx_nchan_module.so";
        if !std::path::Path::new(module).exists() {
            return Err(format!("{module} not found: run bench/install-nchan.sh").into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("bench-nchan-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
             error_log stderr error;\npid {d}/nginx.pid;\nload_module {module};\n\
             events {{ worker_connections 40000; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 100000000;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 server {{\n    listen 127.0.0.1:{port};\n\
             \x20   location = /events {{ nchan_subscriber eventsource; nchan_channel_id bench; }}\n\
             \x20   location = /publish {{ nchan_publisher; nchan_channel_id bench; \
             nchan_message_buffer_length 1000; nchan_message_timeout 1h; }}\n\
             \x20   location = /topic/events {{ nchan_subscriber eventsource; nchan_channel_id $arg_channel; }}\n\
             \x20   location = /topic/publish {{ nchan_publisher; nchan_channel_id $arg_channel; \
             nchan_message_buffer_length 1000; nchan_message_timeout 1h; }}\n  }}\n}}\n"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new("nginx");
        command.arg("-c").arg(&conf).arg("-p").arg(&dir);
        let child = start_peer(&mut command, addr, "nginx").await?;
        let target = Target {
            addr,
            stream_path: "/events".to_owned(),
            publish_path: Server::Nchan.publish_path().to_owned(),
            bearer: None,
            hub: None,
            api_key: None,
        };
        Ok(Self {
            child,
            target,
            _member: None,
            dir: Some(dir),
        })
    }

    /// Centrifugo v6 (env `CENTRIFUGO`, default `target/centrifugo`, which
    /// `bench/install-centrifugo.sh` builds) on a free port, configured as its
    /// documentation shows for unidirectional SSE: `uni_sse` on, HS256 connection tokens
    /// whose `channels` claim subscribes the client (server-side subscriptions), the
    /// HTTP API with a key, and a history of 1,000 publications per channel (as ours).
    async fn centrifugo() -> BenchResult<Self> {
        let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/centrifugo");
        let binary = std::env::var("CENTRIFUGO").unwrap_or_else(|_| default.to_owned());
        if !std::path::Path::new(&binary).exists() {
            return Err(format!("{binary} not found: run bench/install-centrifugo.sh").into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("bench-centrifugo-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (secret, key) = (servers::HUB_SECRET, "bench-api-key");
        let config = serde_json::json!({
            "http_server": {"address": "127.0.0.1", "port": port},
            "log": {"level": "error"},
            "client": {"token": {"hmac_secret_key": secret}, "allowed_origins": ["*"]},
            "http_api": {"key": key},
            "uni_sse": {"enabled": true},
            "channel": {"without_namespace": {
                "history_size": 1000, "history_ttl": "3600s", "allow_recovery": true,
            }},
        });
        let file = dir.join("config.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&config)?)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new(&binary);
        command.arg("--config").arg(&file).current_dir(&dir);
        let child = start_peer(&mut command, addr, "Centrifugo").await?;
        let target = Target {
            addr,
            stream_path: centrifugo_stream(load::CENTRIFUGO_CHANNEL)?,
            publish_path: Server::Centrifugo.publish_path().to_owned(),
            bearer: None,
            hub: None,
            api_key: Some(key.to_owned()),
        };
        Ok(Self {
            child,
            target,
            _member: None,
            dir: Some(dir),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> BenchResult<u32> {
        Ok(self.child.id().ok_or("the server has exited")?)
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

/// What a closed-loop run measured.
#[derive(Debug, Clone, Copy)]
pub struct ClosedLoop {
    /// Events delivered a second, summed over clients.
    pub delivered_per_sec: f64,
    /// Events lost: published x clients - delivered (see [`load::lost`]).
    pub lost: u64,
    /// Server memory per idle connection, KiB.
    pub kib_per_idle_connection: f64,
}

/// A server in its own process with its streams open and a publisher connected.
pub struct Loaded {
    pub process: ServerProcess,
    pub tally: Arc<Tally>,
    pub clients: tokio::task::JoinSet<()>,
    pub publisher: Publisher,
    /// Server memory per idle connection, KiB (RSS growth over the open streams).
    pub kib_per_idle_connection: f64,
}

impl Loaded {
    pub async fn start(server: Server, clients: usize) -> BenchResult<Self> {
        let process = ServerProcess::spawn(server).await?;
        let baseline = process.rss_kib();
        let tally = Tally::new();
        let set = open_clients(&process.target, clients, Arc::clone(&tally)).await?;
        // Let the connections settle before reading what they hold.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let grown = process.rss_kib().saturating_sub(baseline);
        let publisher = Publisher::connect(&process.target).await?;
        Ok(Self {
            process,
            tally,
            clients: set,
            publisher,
            kib_per_idle_connection: grown as f64 / clients as f64,
        })
    }
}

/// Events kept in flight (published but not yet delivered to every client).
const IN_FLIGHT: u64 = 16;

pub async fn closed_loop(
    server: Server,
    clients: usize,
    measure: Duration,
) -> BenchResult<ClosedLoop> {
    let Loaded {
        process: _process,
        tally,
        clients: set,
        mut publisher,
        kib_per_idle_connection,
    } = Loaded::start(server, clients).await?;
    let n = clients as u64;

    let warm_up = Duration::from_secs(1);
    let started = Instant::now();
    let mut window_start: Option<(Instant, u64)> = None;
    let mut seq = 0u64;
    loop {
        seq += 1;
        publisher.publish(seq).await?;
        let wanted = seq.saturating_sub(IN_FLIGHT) * n;
        gate(&tally, wanted, server.name()).await?;
        let elapsed = started.elapsed();
        if window_start.is_none() && elapsed >= warm_up {
            window_start = Some((Instant::now(), tally.delivered.load(Ordering::Relaxed)));
        }
        if let Some((at, from)) = window_start
            && at.elapsed() >= measure
        {
            let delivered = tally.delivered.load(Ordering::Relaxed) - from;
            let delivered_per_sec = delivered as f64 / at.elapsed().as_secs_f64();
            let result = ClosedLoop {
                delivered_per_sec,
                lost: lost(&tally, seq, clients).await?,
                kib_per_idle_connection,
            };
            close_clients(&tally, set).await;
            return Ok(result);
        }
    }
}

/// What a fixed-rate run measured, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct FixedRate {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub lost: u64,
}

pub async fn fixed_rate(
    server: Server,
    clients: usize,
    rate: u64,
    measure: Duration,
) -> BenchResult<FixedRate> {
    let process = ServerProcess::spawn(server).await?;
    let tally = Tally::new();
    let set = open_clients(&process.target, clients, Arc::clone(&tally)).await?;
    let mut publisher = Publisher::connect(&process.target).await?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let warm_up = Duration::from_secs(1);
    let started = Instant::now();
    let mut seq = 0u64;
    while started.elapsed() < warm_up + measure {
        ticks.tick().await;
        if started.elapsed() >= warm_up {
            tally.recording.store(true, Ordering::Relaxed);
        }
        seq += 1;
        publisher.publish(seq).await?;
    }
    // Let the last events land (counting those that never do), then stop recording.
    let lost = lost(&tally, seq, clients).await?;
    tally.recording.store(false, Ordering::Relaxed);
    close_clients(&tally, set).await;
    let histogram = tally.latencies()?;
    Ok(FixedRate {
        p50: histogram.value_at_quantile(0.5),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        lost,
    })
}
