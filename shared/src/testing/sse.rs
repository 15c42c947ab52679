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
