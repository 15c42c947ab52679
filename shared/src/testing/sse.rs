//! An open stream, parsed by the independent `sse-stream` parser ([`SseConnection`]).

#[allow(unused_imports)]
use super::*;

type Events = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// An open SSE response, parsed by the independent `sse-stream` parser.
pub struct SseConnection {
    /// The response status.
    pub status: reqwest::StatusCode,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    events: Events,
}

impl SseConnection {
    /// `GET url` with `accept: text/event-stream` and these extra headers.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> TestResult<Self> {
        let mut request = http().get(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = within(WAIT, "the stream's response headers", request.send()).await??;
        Ok(Self {
            status: response.status(),
            headers: response.headers().clone(),
            events: Box::pin(SseByteStream::new(response.bytes_stream())),
        })
    }

    /// The next block the parser yields (events, and metadata-only blocks such as
    /// `retry:`), within [`WAIT`]. Comments are not blocks: the parser drops them.
    pub async fn next(&mut self) -> TestResult<Sse> {
        self.next_within(WAIT).await
    }

    /// Like [`SseConnection::next`] with another bound.
    pub async fn next_within(&mut self, limit: Duration) -> TestResult<Sse> {
        match within(limit, "the next SSE block", self.events.next()).await? {
            Some(block) => Ok(block?),
            None => Err("the stream ended".into()),
        }
    }

    /// The next block that carries data (skipping metadata-only blocks).
    pub async fn next_event(&mut self) -> TestResult<Sse> {
        loop {
            let block = self.next().await?;
            if block.data.is_some() {
                return Ok(block);
            }
        }
    }

    /// Waits until the server ends the stream cleanly (the body finishes, not a
    /// broken connection), skipping events still in flight.
    pub async fn expect_end(&mut self, limit: Duration) -> TestResult {
        within(limit, "the stream to end", async {
            while let Some(block) = self.events.next().await {
                if let Err(e) = block {
                    return Err(format!("the stream broke instead of ending: {e}").into());
                }
            }
            Ok(())
        })
        .await?
    }
}

/// What sse-chat's `welcome` says: the first event of a member's stream.
pub struct ChatWelcome {
    /// The member's id.
    pub user_id: String,
    /// The member's token (it posts with it).
    pub token: String,
    /// The names of the members online, this one included.
    pub online: Vec<String>,
    /// The whole event data.
    pub data: serde_json::Value,
}

impl SseConnection {
    /// Reads sse-chat's welcome, which must come first, carry no id (it is not part of
    /// the history) and hold a 128-bit token as 32 hex digits.
    pub async fn chat_welcome(&mut self) -> TestResult<ChatWelcome> {
        let welcome = self.next_event().await?;
        if welcome.event.as_deref() != Some("welcome") || welcome.id.is_some() {
            return Err(format!("not a welcome first: {welcome:?}").into());
        }
        let data = json_data(&welcome)?;
        let token = data["token"].as_str().unwrap_or_default().to_owned();
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("not 128 bits as 32 hex digits: {token:?}").into());
        }
        let online = data["online"].as_array().ok_or("no online list")?;
        Ok(ChatWelcome {
            user_id: data["user"]["id"].as_str().ok_or("no user id")?.to_owned(),
            token,
            online: online
                .iter()
                .filter_map(|u| u["name"].as_str().map(str::to_owned))
                .collect(),
            data,
        })
    }
}
