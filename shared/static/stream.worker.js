"use strict";
// The SharedWorker behind sharedEventSource (shared-stream.js): one stream per URL for
// every tab of this origin that asks for it. A tab joins with { join: url, names } and
// leaves with { leave: true } (on pagehide); the stream closes when its last tab leaves,
// and the browser ends the worker when no tab is left at all.

importScripts("/static/shared-stream.js");

const streams = new Map(); // url -> { stream, ports, open }

function join(port, url, names) {
  let entry = streams.get(url);
  if (!entry) {
    entry = { ports: new Set(), open: false };
    entry.stream = keepStream(url, names.slice(), (message) => {
      if (message.kind === "open") entry.open = true;
      if (message.kind === "error") entry.open = message.readyState === EventSource.OPEN;
      for (const each of entry.ports) each.postMessage(message);
    });
    streams.set(url, entry);
    entry.stream.start(null);
  } else {
    for (const name of names) entry.stream.listen(name);
    // A tab that joins an open stream hears that it is open.
    if (entry.open) port.postMessage({ kind: "open", readyState: EventSource.OPEN });
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
    if (message.data.join) join(port, message.data.join, message.data.names || []);
    else if (message.data.leave) leave(port);
  };
};
