"use strict";
// The resume page: an EventSource that can be dropped and resumed by id, with tallies
// that prove nothing was missed (gaps) or delivered twice (duplicates). Unlike the other
// pages it keeps a stream of its own per tab (not sharedEventSource): dropping and
// resuming its own connection is what it shows.

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;
const tally = { received: 0, replayed: 0, gaps: 0, duplicates: 0 };
let source = null;
let lastId = null;   // the last event id seen: our resume cursor
let lastSeq = null;  // the last tick's seq: ticks count 1, 2, 3, ... so a jump is a gap
let replaying = false;
let failures = 0;     // refusals in a row, for the backoff

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

function show() {
  for (const [name, value] of Object.entries(tally)) $(name).textContent = String(value);
  $("gaps").dataset.bad = String(tally.gaps > 0);
  $("duplicates").dataset.bad = String(tally.duplicates > 0);
  $("last-id").textContent = lastId ?? "none";
}

function log(text, kind, replayed) {
  const item = document.createElement("li");
  item.textContent = text; // text, never HTML
  item.className = kind + (replayed ? " replayed" : "");
  const list = $("log");
  list.prepend(item);
  while (list.children.length > MAX_LOG) list.lastChild.remove();
}

function received(event) {
  lastId = event.lastEventId;
  tally.received += 1;
  if (replaying) tally.replayed += 1;
}

function connect() {
  // A new EventSource sends no Last-Event-ID header, so pass our cursor in the query.
  // The browser's own reconnects send the header, which the server prefers.
  const url = lastId === null ? "/events" : `/events?lastEventId=${encodeURIComponent(lastId)}`;
  source = new EventSource(url);
  showState("connecting");

  // Every connection replays first, then sends `live`.
  source.onopen = () => { failures = 0; replaying = true; showState("open"); };
  source.addEventListener("live", () => { replaying = false; });

  source.addEventListener("tick", (event) => {
    const tick = JSON.parse(event.data);
    if (lastSeq !== null && tick.seq > lastSeq + 1) tally.gaps += tick.seq - lastSeq - 1;
    if (lastSeq !== null && tick.seq <= lastSeq) tally.duplicates += 1;
    lastSeq = Math.max(lastSeq ?? 0, tick.seq);
    received(event);
    log(`#${event.lastEventId} tick ${tick.seq} at ${tick.at}`, "tick", replaying);
    show();
  });

  source.addEventListener("note", (event) => {
    received(event);
    log(`#${event.lastEventId} note: ${event.data}`, "note", replaying);
    show();
  });

  // The server could not resume from our id: it says why, and we start counting anew.
  source.addEventListener("reset", (event) => {
    const reset = JSON.parse(event.data);
    lastSeq = null;
    log(`reset (${reset.reason}); the server holds ${reset.oldest ?? "nothing"} to ${reset.latest ?? "nothing"}`, "reset", false);
    $("notice").textContent = `Reset: ${reset.reason}`;
  });

  source.onerror = () => {
    if (source.readyState === EventSource.CONNECTING) {
      showState("reconnecting");
    } else {
      // Closed for good (say, 503 while the server is busy): try again after a "full
      // jitter" backoff, a random wait up to a cap that doubles per failure, so pages
      // refused together do not all return together.
      showState("closed");
      failures += 1;
      setTimeout(connect, Math.random() * Math.min(30000, 1000 * 2 ** failures));
    }
  };
}

$("drop").addEventListener("click", () => {
  source.close();
  showState("closed");
  $("notice").textContent = "Dropped; resuming in 2 s from id " + (lastId ?? "none");
  setTimeout(() => { $("notice").textContent = ""; connect(); }, 2000);
});

$("note-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("note");
  if (!input.value.trim()) {
    $("notice").textContent = "Write something first: a note of only spaces is not published.";
    return;
  }
  const response = await fetch("/events", { method: "POST", body: input.value });
  if (response.ok) {
    input.value = "";
    $("notice").textContent = "";   // whatever went wrong before is over
  } else {
    const error = await response.json().catch(() => ({ message: response.statusText }));
    $("notice").textContent = error.message;
  }
});

connect();
