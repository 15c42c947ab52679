"use strict";
// One event stream per browser, however many tabs show it.
//
// Over HTTP/1.1 a browser opens at most six connections to a host, and every tab's
// EventSource holds one: the seventh tab would hang. sharedEventSource(url, names) gives
// a tab an object that looks like an EventSource (onopen, onmessage, onerror,
// addEventListener, readyState, close) while one stream serves every tab of this origin:
// - where SharedWorker exists, the worker /static/stream.worker.js holds the stream and
//   hands each event to every tab;
// - elsewhere (Chrome on Android), the tabs elect one holder with the Web Locks API; it
//   holds the stream and relays through a BroadcastChannel, and when it closes, the next
//   tab takes the lock and resumes with ?lastEventId= where the last one left off.
// `names` are the named events the page listens for (unnamed ones always arrive).
//
// keepStream is the part both share (the worker loads this file with importScripts):
// one EventSource that the browser reconnects with Last-Event-ID, and that is opened
// again with ?lastEventId= after a "full jitter" backoff when it is closed for good (an
// HTTP error such as 503 when the server is full).

function keepStream(url, names, send) {
  const state = { source: null, lastId: null, failures: 0, timer: null, closed: false };
  const relay = (type) => (event) => {
    if (event.lastEventId) state.lastId = event.lastEventId;
    send({ kind: "event", type, data: event.data, lastEventId: event.lastEventId,
           readyState: state.source.readyState });
  };
  const open = (from) => {
    const resume = from === null ? "" : `${url.includes("?") ? "&" : "?"}lastEventId=${encodeURIComponent(from)}`;
    const source = new EventSource(url + resume);
    state.source = source;
    source.onopen = () => {
      state.failures = 0;
      send({ kind: "open", readyState: source.readyState });
    };
    source.onmessage = relay("message");
    for (const name of names) source.addEventListener(name, relay(name));
    source.onerror = () => {
      send({ kind: "error", readyState: source.readyState });
      if (source.readyState === EventSource.CLOSED && !state.closed) {
        state.failures += 1;
        const cap = Math.min(30000, 1000 * 2 ** state.failures);
        state.timer = setTimeout(() => open(state.lastId), Math.random() * cap);
      }
    };
  };
  return {
    start(from) { open(from); },
    listen(name) {
      if (names.includes(name)) return;
      names.push(name);
      if (state.source) state.source.addEventListener(name, relay(name));
    },
    readyState() { return state.source ? state.source.readyState : EventSource.CONNECTING; },
    close() {
      state.closed = true;
      clearTimeout(state.timer);
      if (state.source) state.source.close();
    },
  };
}

function sharedEventSource(url, names = []) {
  const target = new EventTarget();
  const facade = {
    url,
    readyState: EventSource.CONNECTING,
    onopen: null,
    onmessage: null,
    onerror: null,
    addEventListener: (name, listener) => target.addEventListener(name, listener),
    close: () => {},
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
      facade.onerror(new Event("error"));
    }
  };

  if (typeof SharedWorker === "function") {
    const worker = new SharedWorker("/static/stream.worker.js", { name: "sse" });
    worker.port.onmessage = (message) => deliver(message.data);
    worker.port.postMessage({ join: url, names });
    facade.close = () => worker.port.postMessage({ leave: true });
    addEventListener("pagehide", facade.close);
  } else if (navigator.locks && typeof BroadcastChannel === "function") {
    const channel = new BroadcastChannel(`sse:${url}`);
    let lastId = null;
    channel.onmessage = (message) => {
      if (message.data.lastEventId) lastId = message.data.lastEventId;
      deliver(message.data);
    };
    // Held until this tab goes away; then the next tab in line holds the stream.
    navigator.locks.request(`sse:${url}`, () => new Promise(() => {
      const stream = keepStream(url, names.slice(), (message) => {
        deliver(message);
        channel.postMessage(message);
      });
      stream.start(lastId);
    }));
  } else {
    keepStream(url, names.slice(), deliver).start(null);
  }
  return facade;
}
