//! Requests and what they answer: the shared client, the contract check, errors, metrics, cookies.

#[allow(unused_imports)]
use super::*;

/// Checks that `events`, read from the stream at `path`, are named `names` (`""`:
/// unnamed), then the contract the app at `base` serves at `GET /openapi.json` and the
/// events against it, with `scripts/openapi-check.py`: the document must be valid
/// OpenAPI (openapi-spec-validator), and each event must match its stream's
/// `itemSchema`, its JSON `data` strictly. The Python is `OPENAPI_PYTHON`, else
/// `<target>/openapi-venv/bin/python`, which `scripts/test` makes.
pub async fn check_contract(base: &str, path: &str, events: &[Sse], names: &[&str]) -> TestResult {
    let read: Vec<_> = events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect();
    if read != names {
        return Err(format!("the events read are {read:?}, not {names:?}").into());
    }
    let document = http().get(format!("{base}/openapi.json")).send().await?;
    if document.status() != 200 {
        return Err(format!("GET /openapi.json: {}", document.status()).into());
    }
    let document = document.text().await?;
    let events: Vec<_> = events
        .iter()
        .map(|sse| {
            serde_json::json!({ "path": path, "event": sse.event, "data": sse.data, "id": sse.id })
        })
        .collect();
    let dir = target_tmp().ok_or("no target directory")?;
    std::fs::create_dir_all(&dir)?;
    let name = format!("openapi-{}-{:x}", std::process::id(), rand::random::<u64>());
    let (doc_file, events_file) = (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}-events.json")),
    );
    std::fs::write(&doc_file, &document)?;
    std::fs::write(&events_file, serde_json::to_string(&events)?)?;
    let python = match std::env::var_os("OPENAPI_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => dir
            .parent()
            .ok_or("no target directory")?
            .join("openapi-venv/bin/python"),
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/openapi-check.py");
    let run = Command::new(&python)
        .arg(&script)
        .arg(&doc_file)
        .arg(&events_file)
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(60), "openapi-check.py", run)
        .await?
        .map_err(|e| {
            format!("cannot run {} ({e}): scripts/test makes it (a venv with openapi-spec-validator), or set OPENAPI_PYTHON", python.display())
        })?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the contract does not hold (document: {}):\n{said}",
            doc_file.display()
        )
        .into());
    }
    check_event_types(&python, &doc_file).await?;
    let _ = std::fs::remove_file(&doc_file);
    let _ = std::fs::remove_file(&events_file);
    Ok(())
}

/// Checks that the example's `client/events.ts` is what `scripts/event-types.py` makes
/// of the document in `doc_file` (the TypeScript types of its events, which `tsc
/// --strict` compiles in `scripts/test`); with `UPDATE_EVENT_TYPES=1`, writes it.
async fn check_event_types(python: &Path, doc_file: &Path) -> TestResult {
    // Cargo runs a test in its package's folder, and says which.
    let example = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is not set: run the test through cargo")?;
    let name = example
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("no name")?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/event-types.py");
    let run = Command::new(python)
        .arg(&script)
        .arg(doc_file)
        .arg(name)
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(60), "event-types.py", run).await??;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(format!("event-types.py failed: {said}").into());
    }
    let committed = example.join("client/events.ts");
    if std::env::var_os("UPDATE_EVENT_TYPES").is_some() {
        std::fs::create_dir_all(example.join("client"))?;
        std::fs::write(&committed, &output.stdout)?;
        return Ok(());
    }
    let current = std::fs::read(&committed).unwrap_or_default();
    if current != output.stdout {
        return Err(format!(
            "{} is not what the server describes: run UPDATE_EVENT_TYPES=1 cargo test -p {name} openapi_json_describes, then scripts/test (tsc --strict over the client code)",
            committed.display()
        )
        .into());
    }
    Ok(())
}

/// Reads an unlabelled metric from `base/metrics`.
pub async fn metric(base: &str, name: &str) -> TestResult<f64> {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .ok_or_else(|| format!("metric {name} not found in:\n{text}"))?
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("metric {name}: {e}").into())
}

/// A plain HTTP client for tests (no proxy, no compression unless asked for), shared
/// by every helper so thousands of streams share one pool and one resolver.
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // The server's crypto (ring) for HTTPS: reqwest's own default is not built.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}
/// Checks an error response as every example sends it: `status`, a JSON body with
/// exactly `error` (= `code`) and a non-empty `message`. Returns the body.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> TestResult<serde_json::Value> {
    let got = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // Not read when it is not JSON (an event stream's body never ends), and read
    // within WAIT when it is.
    if !json {
        return Err(format!("expected {status} {code}, got {got}, not JSON").into());
    }
    let body: serde_json::Value = within(WAIT, "an error's body", response.json()).await??;
    let fields = body.as_object().map(|o| o.len());
    let message = body["message"].as_str().is_some_and(|m| !m.is_empty());
    if got != status || !json || body["error"] != code || !message || fields != Some(2) {
        return Err(format!("expected {status} {code}, got {got} (JSON: {json}) {body}").into());
    }
    Ok(body)
}

/// Checks the answer to a write while the backend is down: `503` with `retry-after` and
/// the `backend-unavailable` error, and `sse_backend_up` at 0 on `base` soon after.
pub async fn expect_backend_down(response: reqwest::Response, base: &str) -> TestResult {
    if !response.headers().contains_key("retry-after") {
        return Err("a 503 without retry-after".into());
    }
    expect_error(response, 503, "backend-unavailable").await?;
    wait_until(WAIT, "the sse_backend_up gauge to drop", || async {
        Ok(metric(base, "sse_backend_up").await? == 0.0)
    })
    .await
}

/// The `set-cookie` header's whole value (the cookie and its attributes).
pub fn set_cookie(headers: &reqwest::header::HeaderMap) -> TestResult<String> {
    let value = headers.get("set-cookie").ok_or("no set-cookie")?;
    Ok(value.to_str()?.to_owned())
}

/// An event's data, parsed as JSON; an event without data is an error.
pub fn json_data(event: &Sse) -> TestResult<serde_json::Value> {
    let data = event.data.as_deref().ok_or("an event without data")?;
    Ok(serde_json::from_str(data)?)
}
