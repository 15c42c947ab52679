// Reads an SSE stream with the npm `eventsource` package (a WHATWG EventSource for
// Node) and prints each event as one JSON line: {"type", "id", "data"}.
// Usage: node read-events.mjs URL COUNT [EVENT NAME ...]
// It reconnects by itself (with Last-Event-ID), exits 0 after COUNT events, 2 after 60 s.
import { EventSource } from "eventsource";

const [url, count, ...names] = process.argv.slice(2);
const source = new EventSource(url);
let seen = 0;

const print = (type) => (event) => {
  console.log(JSON.stringify({ type, id: event.lastEventId, data: event.data }));
  seen += 1;
  if (seen >= Number(count)) {
    source.close();
    process.exit(0);
  }
};

source.onopen = () => console.error("open");
source.onmessage = print("message");
for (const name of names) source.addEventListener(name, print(name));
source.onerror = (error) => console.error(`error: ${error.message ?? "stream ended"}`);
setTimeout(() => {
  console.error("timed out");
  process.exit(2);
}, 60_000);
