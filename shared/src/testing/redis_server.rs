//! A real `redis-server` ([`RedisServer`]).

#[allow(unused_imports)]
use super::*;

/// A real `redis-server` on a free loopback port, with its data in a fresh folder
/// (append-only, so a restart keeps the streams). Stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` (env `REDIS_SERVER`, default from `PATH`) and waits until it
    /// answers.
    pub async fn start() -> TestResult<Self> {
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("sse-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.restart().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and waits until it is gone.
    pub async fn stop(&mut self) -> TestResult {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and folder.
    pub async fn restart(&mut self) -> TestResult {
        self.stop().await?;
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot start {binary} ({e}): install redis-server (scripts/test does)")
            })?;
        self.child = Some(child);
        let url = self.url();
        wait_until(
            Duration::from_secs(10),
            "redis-server to answer",
            || async {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return Ok(false);
                };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return Ok(false);
                };
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                Ok(pong.is_ok())
            },
        )
        .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
