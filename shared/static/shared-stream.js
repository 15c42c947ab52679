"use strict";
// One event stream per browser, however many tabs show it.
//
// Over HTTP/1.1 a browser opens at most six connections to a host, and every tab's
// EventSource holds one: the seventh tab would hang. sharedEventSource(url, names, options)
// gives a tab an object that looks like an EventSource (onopen, onmessage, onerror,
// addEventListener, removeEventListener, readyState, close) while one stream serves every
// tab of this origin:
// - where SharedWorker exists, the worker /static/stream.worker.js holds the stream and
//   hands each event to every tab;
// - elsewhere (Chrome on Android), the tabs elect one holder with the Web Locks API; it
//   holds the stream and relays through a BroadcastChannel, and when it closes, the next
//   tab takes the lock and resumes with ?lastEventId= where the last one left off.
// `names` are the named events the page listens for (unnamed ones always arrive).
// reopen() opens the stream again from its last id, for every tab: how a new cookie (a
// sign-in) takes effect, since the browser sends cookies only with a new request.
// `options` are for a tab that joins a stream already open:
// - keep: N shows it the stream's last N events first (a chat's recent messages);
// - reopenForNewTab: the stream begins with events meant for each connection (the chat's
//   welcome, the stock feed's snapshot): the holder opens it again from the last id, so
//   the new tab gets them and the other tabs see no event twice.
// and resumeParam names the query parameter a stream opened again carries its last id in
// (default lastEventId; Mercure's is last_event_id). With explain: true, a stream the
// server refuses is asked why (see refusal): the error event carries the server's
// message as event.reason, and event.final is true when waiting cannot mend it (a 4xx
// other than 408 and 429: a bad parameter, a missing token), so it is not retried.
// Only for streams whose opening changes nothing on the server (the ask opens it).
//
// keepStream is the part both share (the worker loads this file with importScripts):
// one EventSource that the browser reconnects with Last-Event-ID, and that is opened
// again with ?lastEventId= (resumeParam) after a "full jitter" backoff when it is closed for good (an
// HTTP error such as 503 when the server is full).

// Why the server refused a stream, which EventSource cannot tell: the same request
// again with fetch, read as the JSON error ({ message }); null if it opens now.
async function refusal(url) {
  const ask = new AbortController();
  try {
    const response = await fetch(url, { headers: { accept: "application/json" }, signal: ask.signal });
    if (response.ok) return null;
    const body = await response.json().catch(() => ({}));
    return { status: response.status, message: body.message || `HTTP ${response.status}` };
  } catch {
    return null;
  } finally {
    ask.abort();
  }
}

function keepStream(url, names, send, { keep = 0, resumeParam = "lastEventId", explain = false } = {}) {
  const state = { source: null, lastId: null, failures: 0, timer: null, closed: false };
  const kept = [];
  const relay = (source, type) => (event) => {
    // A stream being replaced (see reopen) is silent: its successor resumes after the
    // last event this one relayed.
    if (source !== state.source) return;
    if (event.lastEventId) state.lastId = event.lastEventId;
    const message = { kind: "event", type, data: event.data, lastEventId: event.lastEventId,
                      readyState: source.readyState };
    kept.push(message);
    if (kept.length > keep) kept.shift();
    send(message);
  };
  const open = (from) => {
    clearTimeout(state.timer);
    const resume = from === null ? "" : `${url.includes("?") ? "&" : "?"}${resumeParam}=${encodeURIComponent(from)}`;
    const previous = state.source;
    const source = new EventSource(url + resume);
    state.source = source;
    // The stream it replaces closes only once this one is open: a chat member is never
    // without a stream, so the room sees no leave and join.
    const replaced = () => { if (previous) previous.close(); };
    source.onopen = () => {
      replaced();
      state.failures = 0;
      send({ kind: "open", readyState: source.readyState });
    };
    source.onmessage = relay(source, "message");
    for (const name of names) source.addEventListener(name, relay(source, name));
    const retry = () => {
      state.failures += 1;
      const cap = Math.min(30000, 1000 * 2 ** state.failures);
      state.timer = setTimeout(() => open(state.lastId), Math.random() * cap);
    };
    source.onerror = () => {
      replaced();
      if (source !== state.source) return;
      const refused = source.readyState === EventSource.CLOSED && !state.closed;
      if (!refused || !explain) {
        send({ kind: "error", readyState: source.readyState });
        if (refused) retry();
        return;
      }
      refusal(source.url).then((why) => {
        if (source !== state.source || state.closed) return;
        const status = why ? why.status : 0;
        const final = status >= 400 && status < 500 && status !== 408 && status !== 429;
        send({ kind: "error", readyState: source.readyState, reason: why && why.message, final });
        if (!final) retry();
      });
    };
  };
  return {
    start(from) { open(from); },
    reopen() { if (!state.closed && state.source) open(state.lastId); },
    listen(name) {
      if (names.includes(name)) return;
      names.push(name);
      if (state.source) state.source.addEventListener(name, relay(state.source, name));
    },
    readyState() { return state.source ? state.source.readyState : EventSource.CONNECTING; },
    // What a tab that joins now is told first: that the stream is open, its kept events.
    catchUp() {
      const now = this.readyState();
      const opened = now === EventSource.OPEN ? [{ kind: "open", readyState: now }] : [];
      return opened.concat(kept.map((message) => ({ ...message, readyState: now })));
    },
    close() {
      state.closed = true;
      clearTimeout(state.timer);
      if (state.source) state.source.close();
    },
  };
}

function sharedEventSource(url, names = [], options = {}) {
  const target = new EventTarget();
  const facade = {
    url,
    readyState: EventSource.CONNECTING,
    onopen: null,
    onmessage: null,
    onerror: null,
    addEventListener: (name, listener) => target.addEventListener(name, listener),
    removeEventListener: (name, listener) => target.removeEventListener(name, listener),
    close: () => {},
    reopen: () => {},
  };
  const deliver = (message) => {
    const wasOpen = facade.readyState === EventSource.OPEN;
    facade.readyState = message.readyState;
    // A tab that joined a stream already open learns it from the first event.
    if (!wasOpen && message.kind === "event" && message.readyState === EventSource.OPEN
        && facade.onopen) {
      facade.onopen(new Event("open"));
    }
    if (message.kind === "event") {
      const event = new MessageEvent(message.type, {
        data: message.data, lastEventId: message.lastEventId,
      });
      if (message.type === "message" && facade.onmessage) facade.onmessage(event);
      target.dispatchEvent(event);
    } else if (message.kind === "open" && facade.onopen) {
      facade.onopen(new Event("open"));
    } else if (message.kind === "error" && facade.onerror) {
      const event = new Event("error");
      event.reason = message.reason || null;
      event.final = Boolean(message.final);
      facade.onerror(event);
    }
  };
  const reopenForNewTab = Boolean(options.reopenForNewTab);

  if (typeof SharedWorker === "function") {
    const worker = new SharedWorker("/static/stream.worker.js", { name: "sse" });
    worker.port.onmessage = (message) => deliver(message.data);
    worker.port.postMessage({ join: url, names, options });
    facade.reopen = () => worker.port.postMessage({ reopen: true });
    facade.close = () => worker.port.postMessage({ leave: true });
    addEventListener("pagehide", facade.close);
  } else if (navigator.locks && typeof BroadcastChannel === "function") {
    // A tab says hello; the holder answers it with what a new tab is told first (see
    // catchUp). Until then the live events it hears are ones that answer holds too.
    const tab = Math.random().toString(36).slice(2);
    const channel = new BroadcastChannel(`sse:${url}`);
    const leaving = new AbortController();
    let caughtUp = false;
    let lastId = null;
    let stream = null;
    const heard = (message) => {
      if (message.lastEventId) lastId = message.lastEventId;
      deliver(message);
    };
    channel.onmessage = ({ data }) => {
      if (data.holder && !caughtUp) {
        channel.postMessage({ hello: tab });   // a new holder, which has not heard us
      } else if (data.reopen && stream) {
        stream.reopen();
      } else if (data.hello && stream) {
        channel.postMessage({ to: data.hello, messages: stream.catchUp() });
        if (reopenForNewTab) stream.reopen();
      } else if (data.to === tab && !caughtUp) {
        caughtUp = true;
        data.messages.forEach(heard);
      } else if (data.kind && caughtUp) {
        heard(data);
      }
    };
    channel.postMessage({ hello: tab });
    facade.reopen = () => (stream ? stream.reopen() : channel.postMessage({ reopen: true }));
    // Held until this tab goes away or closes the stream; then the next tab in line
    // holds it.
    navigator.locks.request(`sse:${url}`, { signal: leaving.signal }, () => new Promise((release) => {
      caughtUp = true;
      stream = keepStream(url, names.slice(), (message) => {
        deliver(message);
        channel.postMessage(message);
      }, options);
      stream.start(lastId);
      channel.postMessage({ holder: true });
      leaving.signal.onabort = release;
    })).catch(() => {}); // closed before its turn came
    facade.close = () => {
      if (stream) stream.close();
      leaving.abort();
      channel.close();
    };
  } else {
    const stream = keepStream(url, names.slice(), deliver, options);
    facade.reopen = () => stream.reopen();
    facade.close = () => stream.close();
    stream.start(null);
  }
  return facade;
}
