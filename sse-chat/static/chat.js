"use strict";
// The chat page: join with a name, then one event stream for everything the room says.
// Everything shown comes from the stream, our own messages too, so every member sees
// one order. Text is always put in text nodes: nothing a member sends becomes markup.
// Who we are is an HttpOnly cookie the server set when we joined: the browser sends it
// with every reconnect and post, and no script (ours included) can read it. So every
// tab of a browser is the same member, and they share one stream (shared-stream.js).
// Names are not unique, so every name is shown with the member's id ("alice #3f9a0c").

const $ = (id) => document.getElementById(id);
const MAX_SHOWN = 500;
const MAX_MESSAGE_BYTES = 2000;   // the server's limit (MAX_MESSAGE_BYTES in lib.rs)
let source = null;
let me = null;                                        // {id, name} from the welcome
let name = localStorage.getItem("chat.name");
const online = new Map();                             // id -> name

// "alice #3f9a0c": the id (random, never reused) tells two members called alice apart;
// its first six hex digits are enough to see the difference.
function label(user) {
  return `${user.name} #${user.id.slice(0, 6)}`;
}

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

function connect() {
  showState("connecting");
  // The cookie keeps our identity; the name is only used if the server forgot us. The
  // browser reconnects by itself (after the server's jittered `retry:`), with the same
  // URL, the cookie and Last-Event-ID, so a reconnect gets exactly what it missed.
  // A tab that joins the shared stream later is shown the shared stream's last 50
  // events (a new stream gets the last 50 messages and the presence between), and the
  // stream is reopened from its last id so that tab gets a welcome of its own.
  source = sharedEventSource(`/chat/events?${new URLSearchParams({ name })}`,
    ["welcome", "reset", "join", "leave"], { keep: 50, reopenForNewTab: true });
  source.onopen = () => showState("open");

  source.addEventListener("welcome", (event) => {
    const welcome = JSON.parse(event.data);
    me = welcome.user;
    online.clear();
    for (const user of welcome.online) online.set(user.id, user.name);
    $("me").textContent = label(me);
    $("join").hidden = true;
    $("room").hidden = false;
    showOnline();
  });

  // The server could not go on from the last event we saw (it restarted, or we fell too
  // far behind): what is on screen may not be the room's any more, so start afresh.
  source.addEventListener("reset", () => {
    $("messages").replaceChildren();
  });

  source.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    const item = document.createElement("li");
    if (me && message.from.id === me.id) item.classList.add("mine");
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = label(message.from);
    const at = document.createElement("time");
    at.className = "at";
    at.dateTime = message.at;
    at.textContent = new Date(message.at).toLocaleTimeString();
    item.append(from, document.createTextNode(message.text), at);
    item.dataset.id = String(message.id);
    append(item);
  });

  for (const kind of ["join", "leave"]) {
    source.addEventListener(kind, (event) => {
      const { user } = JSON.parse(event.data);
      if (kind === "join") online.set(user.id, user.name); else online.delete(user.id);
      const item = document.createElement("li");
      item.className = "presence";
      item.textContent = `${label(user)} ${kind === "join" ? "joined" : "left"}`;
      append(item);
      showOnline();
    });
  }

  source.onerror = () => {
    if (source.readyState === EventSource.CONNECTING) {
      showState("reconnecting");
      return;
    }
    // Refused (a bad name, too many joins): EventSource gives up, and the shared
    // stream tries again after its backoff; a new name from the form opens another.
    showState("closed");
    if (me === null) {
      $("join-error").textContent = "Could not join. Names are 1 to 32 characters that show (no invisible or control characters); or too many joins from here, wait a minute.";
    }
  };
}

function append(item) {
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.append(item);
  while (list.children.length > MAX_SHOWN) list.firstChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function showOnline() {
  const list = $("online");
  list.replaceChildren();
  for (const [id, who] of [...online].sort((a, b) => a[1].localeCompare(b[1]))) {
    const item = document.createElement("li");
    item.textContent = label({ id, name: who });
    if (me && id === me.id) item.className = "me";
    list.append(item);
  }
  $("online-count").textContent = String(online.size);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  name = $("name").value.trim();
  if (!name) return;
  localStorage.setItem("chat.name", name);
  $("join-error").textContent = "";
  connect();
});

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  if (!input.value.trim()) {
    $("send-error").textContent = "Write something first: a message of only spaces is not sent.";
    return;
  }
  // The server counts bytes of UTF-8 (an "é" is two), not the characters maxlength counts.
  const bytes = new TextEncoder().encode(input.value).length;
  if (bytes > MAX_MESSAGE_BYTES) {
    $("send-error").textContent =
      `At most ${MAX_MESSAGE_BYTES} bytes: this message is ${bytes} (letters such as é take two).`;
    return;
  }
  // Same-origin fetch sends the member cookie: that is our credential.
  const response = await fetch("/chat/messages", { method: "POST", body: input.value });
  if (response.ok) {
    input.value = "";   // the message itself arrives through the stream
    $("send-error").textContent = "";
  } else {
    const error = await response.json().catch(() => ({ message: response.statusText }));
    $("send-error").textContent = error.message;
  }
});

if (name) connect();
else showState("not joined");
