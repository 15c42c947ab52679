//! Any id, event name and data through `sse_shared::frame` and back through an
//! independent parser (`sse-stream`): a single-line id and name come back exactly, any
//! data comes back with only CR and CRLF turned into LF, and nothing else appears.
//! Its twin, run in CI, is the proptest in `shared/tests/framing.rs`.

#![no_main]

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt, stream};
use libfuzzer_sys::fuzz_target;
use sse_shared::Frame;
use sse_stream::SseByteStream;

fuzz_target!(|input: (String, String, String, u8)| {
    let (id, name, data, chunk) = input;
    let frame = Frame::new().id(&id).and_then(|f| f.event(&name));
    let single_line = |s: &str| !s.contains(['\r', '\n', '\0']);
    let Ok(frame) = frame else {
        // Refused exactly when the id or the name could break the framing.
        assert!(!(single_line(&id) && single_line(&name)));
        return;
    };
    assert!(single_line(&id) && single_line(&name));
    let mut wire = Frame::new().retry(3000).finish().to_vec();
    wire.extend_from_slice(&frame.data(&data).finish());

    let chunks: Vec<Result<Bytes, std::io::Error>> = wire
        .chunks(usize::from(chunk.max(1)))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let parsed = SseByteStream::new(stream::iter(chunks)).collect::<Vec<_>>();
    let blocks: Vec<_> = parsed
        .now_or_never()
        .expect("in-memory input parses without waiting")
        .into_iter()
        .map(|b| b.expect("our stream is valid SSE"))
        .collect();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!(blocks[1].id.as_deref(), Some(id.as_str()));
    assert_eq!(blocks[1].event.as_deref(), Some(name.as_str()));
    let expected = data.replace("\r\n", "\n").replace('\r', "\n");
    assert_eq!(blocks[1].data.as_deref(), Some(expected.as_str()));
});
