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
let lastId = null;

function showState(state) {
  view.connection.dataset.state = state;
  view.connection.textContent = state;
}

function connect(url) {
  const source = new EventSource(url);
  showState("connecting");

  source.onopen = () => showState("open");

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
      // Closed for good (an HTTP error such as 503 when the server is full):
      // try again ourselves after a pause, passing our id in the query string.
      showState("closed");
      const resume = lastId === null ? "" : `?lastEventId=${encodeURIComponent(lastId)}`;
      setTimeout(() => connect(`/events${resume}`), 5000);
    }
  };
}

connect("/events");
