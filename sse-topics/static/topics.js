// The topic explorer: matchers to subscribe with, one EventSource for all of them,
// and a form that publishes with a bearer token. Every text from the hub is set with
// textContent: data from other publishers never becomes markup.
"use strict";

const hub = "/.well-known/mercure";
const matchers = []; // [param, pattern]
let source = null;

const $ = (id) => document.getElementById(id);

// The header's badge and the line under the matchers say the same.
function showState(state, status = state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
  $("status").textContent = status;
}
showState("not connected");

function showMatchers() {
  const list = $("matchers");
  list.replaceChildren();
  matchers.forEach(([param, pattern], i) => {
    const item = document.createElement("li");
    item.textContent = `${param === "match" ? "exact" : "pattern"}: ${pattern} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `remove ${pattern}`);
    remove.addEventListener("click", () => {
      matchers.splice(i, 1);
      showMatchers();
      if (source) connect();
    });
    item.append(remove);
    list.append(item);
  });
}

function show(event) {
  const item = document.createElement("li");
  const head = document.createElement("div");
  head.textContent = `${event.type} ${event.lastEventId}`;
  head.className = "topic";
  const data = document.createElement("pre");
  data.textContent = event.data;
  item.append(head, data);
  $("log").prepend(item);
  while ($("log").children.length > 200) $("log").lastChild.remove();
}

function connect() {
  if (source) source.close();
  if (matchers.length === 0) {
    showState("not connected", "add a matcher first");
    return;
  }
  const url = new URL(hub, location.origin);
  for (const [param, pattern] of matchers) url.searchParams.append(param, pattern);
  // One stream for every tab with these matchers (shared-stream.js); a stream opened
  // again resumes with Mercure's last_event_id parameter.
  // A refused subscription is explained (an invalid URL pattern is a `400` saying what
  // is wrong with it) and not retried.
  source = sharedEventSource(url.toString(), [], { resumeParam: "last_event_id", explain: true });
  showState("connecting");
  source.onopen = () => showState("open", `connected (${matchers.length} matchers)`);
  source.onerror = (event) => {
    const state = event.final ? "closed" : "reconnecting";
    showState(state, event.reason ? `${state}: ${event.reason}` : state);
  };
  source.onmessage = show;
}

$("matcher-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const pattern = $("pattern").value.trim();
  if (!pattern) return;
  matchers.push([$("match-type").value, pattern]);
  $("pattern").value = "";
  showMatchers();
  if (source) connect();
});

$("connect").addEventListener("click", () => {
  connect();
  watchSubscribers();
});

// Who is subscribed: the subscriptions API for the list and its cursor, then the
// subscription events after that cursor. Both need the token in an Authorization
// header, which EventSource cannot send, so the stream is read with fetch().
const subscriptions = new Map(); // id -> document
let watching = null;

function showSubscribers() {
  const ours = (doc) => matchers.some(([param, pattern]) =>
    pattern === doc.match && (param === "match") === (doc.match_type === "exact"));
  const list = $("subscribers");
  list.replaceChildren();
  const docs = [...subscriptions.values()].filter(ours);
  for (const doc of docs) {
    const item = document.createElement("li");
    const payload = doc.payload ? ` ${JSON.stringify(doc.payload)}` : "";
    item.textContent = `${doc.match_type} ${doc.match}: ${doc.subscriber}${payload}`;
    list.append(item);
  }
  $("subscribers-status").textContent = `${docs.length} subscribed`;
}

async function watchSubscribers() {
  const token = $("token").value.trim();
  if (!token) return;
  if (watching) watching.abort();
  watching = new AbortController();
  const headers = { Authorization: `Bearer ${token}` };
  const signal = watching.signal;
  try {
    const listed = await fetch(`${hub}/subscriptions`, { headers, signal });
    if (!listed.ok) {
      $("subscribers-status").textContent = `cannot list subscribers (${listed.status})`;
      return;
    }
    const cursor = /last-event-id="((?:[^"\\]|\\.)*)"/.exec(listed.headers.get("link") || "");
    subscriptions.clear();
    for (const doc of (await listed.json()).subscriptions) subscriptions.set(doc.id, doc);
    showSubscribers();
    const url = new URL(hub, location.origin);
    url.searchParams.append("match_urlpattern", `${hub}/subscriptions/:type/:match/:subscriber`);
    if (cursor) url.searchParams.append("last_event_id", cursor[1].replace(/\\(.)/g, "$1"));
    const stream = await fetch(url, { headers, signal });
    await readEvents(stream.body, (type, data) => {
      if (type !== "mercure") return;
      const doc = JSON.parse(data);
      if (doc.active) subscriptions.set(doc.id, doc); else subscriptions.delete(doc.id);
      showSubscribers();
    });
  } catch (err) {
    if (!signal.aborted) $("subscribers-status").textContent = `lost the subscribers' stream: ${err}`;
  }
}

// A minimal SSE reader for a fetch() body: event names and data, nothing else needed.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", type = "message", data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) onEvent(type, data.join("\n"));
        type = "message";
        data = [];
      } else if (line.startsWith("event:")) {
        type = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  }
}

$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new URLSearchParams();
  form.append("topic", $("topic").value);
  form.append("data", $("data").value);
  if ($("private").checked) form.append("private", "on");
  const headers = {};
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const res = await fetch(hub, { method: "POST", headers, body: form });
    const text = await res.text();
    if (res.ok) {
      $("published").textContent = `published as ${text}`;
    } else {
      let message = text;
      try { message = JSON.parse(text).message; } catch (_) { /* not JSON */ }
      $("published").textContent = `refused (${res.status}): ${message}`;
    }
  } catch (err) {
    $("published").textContent = `cannot reach the hub: ${err}`;
  }
});
