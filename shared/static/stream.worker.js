"use strict";
// The SharedWorker behind sharedEventSource (shared-stream.js): one stream per URL for
// every tab of this origin that asks for it. A tab joins with { join: url, names,
// options }, reopens its stream with { reopen: true } (a new cookie takes effect)
// and leaves with { leave: true } (on pagehide); the stream closes when
// its last tab leaves, and the browser ends the worker when no tab is left at all.

importScripts("/static/shared-stream.js");

const streams = new Map(); // url -> { stream, ports }

function join(port, { join: url, names = [], options = {} }) {
  let entry = streams.get(url);
  if (!entry) {
    entry = { ports: new Set() };
    entry.stream = keepStream(url, names.slice(), (message) => {
      for (const each of entry.ports) each.postMessage(message);
    }, options);
    streams.set(url, entry);
    entry.stream.start(null);
  } else {
    for (const name of names) entry.stream.listen(name);
    // A tab that joins an open stream hears that it is open, and its kept events.
    for (const message of entry.stream.catchUp()) port.postMessage(message);
    if (options.reopenForNewTab) entry.stream.reopen();
  }
  entry.ports.add(port);
  port.joined = url;
}

function leave(port) {
  const entry = streams.get(port.joined);
  if (!entry) return;
  entry.ports.delete(port);
  if (entry.ports.size === 0) {
    entry.stream.close();
    streams.delete(port.joined);
  }
}

onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => {
    if (message.data.join) join(port, message.data);
    else if (message.data.leave) leave(port);
    else if (message.data.reopen) streams.get(port.joined)?.stream.reopen();
  };
};
