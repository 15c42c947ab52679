"use strict";
// The counter page: the count, and the connection state, from one stream that every
// tab of the page shares.

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

// One stream for every tab of this page (shared-stream.js): the browser reconnects it
// with Last-Event-ID, and after an HTTP error (such as 503 when the server is full) it
// is opened again with ?lastEventId= after a jittered backoff.
const source = sharedEventSource("/events", ["reset"]);

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
    reconnects += 1;
    view.reconnects.textContent = String(reconnects);
    showState("reconnecting");
  } else {
    showState("closed");
  }
};
