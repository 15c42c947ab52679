//! A real nginx in front ([`Nginx`]).

#[allow(unused_imports)]
use super::*;

/// A real nginx on a free loopback port, proxying to `upstreams` round-robin with its
/// default `proxy_buffering on`, the way many deployments run it. Stopped when dropped.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// The nginx configuration this uses (the part that matters for SSE is the
    /// `location` block; see the README).
    pub fn config(dir: &std::path::Path, port: u16, upstreams: &[&str]) -> String {
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u};\n"))
            .collect();
        let d = dir.display();
        format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               upstream app {{\n{servers}  }}\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://app;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                   proxy_set_header Host $http_host;\n\
                   proxy_set_header X-Forwarded-Proto $scheme;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_read_timeout 1h;\n\
                 }}\n\
               }}\n\
             }}\n"
        )
    }

    /// Starts nginx (env `NGINX`, default `/usr/sbin/nginx`) in front of `upstreams`
    /// (`host:port` each) and waits until it accepts connections.
    pub async fn start(upstreams: &[&str]) -> TestResult<Self> {
        let binary = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("sse-test-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Workers may run as another user (nobody, when started as root).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, Self::config(&dir, port, upstreams))?;
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            // One process in the foreground, so stopping it stops everything.
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot start {binary} ({e}): install nginx (scripts/test does)")
            })?;
        wait_until(Duration::from_secs(10), "nginx to listen", || async {
            Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok())
        })
        .await?;
        Ok(Self { child, port, dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
