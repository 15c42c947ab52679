//! Any text, sent as event data, comes back identical through an independent parser
//! (`sse-stream`), up to the one change the SSE grammar itself makes: CR and CRLF end
//! a line just as LF does, so they arrive as LF.

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt, stream};
use proptest::prelude::*;
use sse_shared::Frame;
use sse_stream::{Sse, SseByteStream};

/// Parses the bytes of a whole stream, delivered in chunks of `chunk` bytes.
fn parse(wire: &[u8], chunk: usize) -> Vec<Sse> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = wire
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let parsed = SseByteStream::new(stream::iter(chunks)).collect::<Vec<_>>();
    // Every chunk is ready at once, so the parse completes without waiting.
    parsed
        .now_or_never()
        .unwrap_or_else(|| panic!("the parse did not complete"))
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("the parser rejected our stream: {e}"))
}

fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A stream as a server sends it: `retry:` first, then one event.
fn wire(id: &str, name: &str, data: &str) -> Vec<u8> {
    let mut wire = Frame::new().retry(3000).finish().to_vec();
    let event = Frame::new()
        .id(id)
        .and_then(|f| f.event(name))
        .map(|f| f.data(data).finish())
        .unwrap_or_else(|e| panic!("valid id and name refused: {e}"));
    wire.extend_from_slice(&event);
    wire
}

fn tricky_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\r", "\n", "\r\n", "\n\r", "\0", "\u{feff}", " ", "  ", ":", "data:", "event: x", "id: 9",
        "retry: 1", "\u{202e}", "\u{2028}", "\u{2029}", "\u{85}", "é", "🦀", "<script>", "",
    ]);
    prop::collection::vec(
        prop_oneof![pieces.prop_map(String::from), any::<String>()],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_survives_the_round_trip(data in tricky_text(), chunk in 1usize..64) {
        let blocks = parse(&wire("42", "note", &data), chunk);
        prop_assert_eq!(blocks.len(), 2, "retry block, then exactly one event: {:?}", blocks);
        prop_assert_eq!(blocks[0].retry, Some(3000));
        prop_assert_eq!(blocks[1].id.as_deref(), Some("42"));
        prop_assert_eq!(blocks[1].event.as_deref(), Some("note"));
        prop_assert_eq!(blocks[1].data.clone(), Some(normalized(&data)));
    }

    #[test]
    fn ids_and_names_are_accepted_exactly_when_single_line(value in tricky_text()) {
        let single_line = !value.contains(['\r', '\n', '\0']);
        prop_assert_eq!(Frame::new().id(&value).is_ok(), single_line);
        prop_assert_eq!(Frame::new().event(&value).is_ok(), single_line);
        if single_line {
            let blocks = parse(&wire(&value, &value, "x"), 7);
            // The parser strips one leading space after the colon; we always write one,
            // so a value that starts with a space keeps it.
            prop_assert_eq!(blocks[1].id.as_deref(), Some(value.as_str()));
            prop_assert_eq!(blocks[1].event.as_deref(), Some(value.as_str()));
        }
    }

    #[test]
    fn json_data_round_trips(text in tricky_text()) {
        let frame = Frame::new().json(&serde_json::json!({ "text": text }))
            .unwrap_or_else(|e| panic!("{e}"))
            .finish();
        let blocks = parse(&frame, 5);
        let data = blocks[0].data.clone().unwrap_or_default();
        let back: serde_json::Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(back["text"].as_str(), Some(text.as_str()));
    }
}

#[test]
fn a_leading_bom_and_leading_spaces_in_data_are_kept() {
    let data = "\u{feff}  two spaces and a BOM";
    let blocks = parse(&wire("1", "m", data), 3);
    assert_eq!(blocks[1].data.as_deref(), Some(data));
}
