"use strict";
// The counter page: one EventSource, the count, and the connection state.

const view = {
  count: document.getElementById("count"),
  received: document.getElementById("received"),
  lastId: document.getElementById("last-id"),
  reconnects: document.getElementById("reconnects"),
  notice: document.getElementById("notice"),
  connection: document.getElementById("connection"),
};
let received = 0;
let reconnects = 0;
let failures = 0;      // refusals in a row, for the backoff
let lastId = null;

function showState(state) {
  view.connection.dataset.state = state;
  view.connection.textContent = state;
}

function connect(url) {
  const source = new EventSource(url);
  showState("connecting");

  source.onopen = () => { failures = 0; showState("open"); };

  // Unnamed events arrive as "message"; data is the count, lastEventId its id.
  source.onmessage = (event) => {
    received += 1;
    lastId = event.lastEventId;
    view.count.textContent = event.data;
    view.received.textContent = String(received);
    view.lastId.textContent = lastId;
  };

  // The server could not resume from our id and starts over.
  source.addEventListener("reset", (event) => {
    const { reason } = JSON.parse(event.data);
    view.notice.textContent = `The server could not resume (${reason}); counting from 1.`;
    received = 0;
  });

  source.onerror = () => {
    if (source.readyState === EventSource.CONNECTING) {
      // The browser retries by itself, sending Last-Event-ID.
      reconnects += 1;
      view.reconnects.textContent = String(reconnects);
      showState("reconnecting");
    } else {
      // Closed for good (an HTTP error such as 503 when the server is full): try
      // again ourselves, passing our id in the query string, after a "full jitter"
      // backoff: a random wait up to a cap that doubles per failure, so pages refused
      // together do not all come back together.
      showState("closed");
      const resume = lastId === null ? "" : `?lastEventId=${encodeURIComponent(lastId)}`;
      failures += 1;
      const cap = Math.min(30000, 1000 * 2 ** failures);
      setTimeout(() => connect(`/events${resume}`), Math.random() * cap);
    }
  };
}

connect("/events");
