"use strict";
// The chat page: join with a name, then one EventSource for everything the room says.
// Everything shown comes from the stream, our own messages too, so every member sees
// one order. Text is always put in text nodes: nothing a member sends becomes markup.

const $ = (id) => document.getElementById(id);
const MAX_SHOWN = 500;
const RECONNECT_MS = 3000;
let source = null;
let me = null;                                        // {id, name} from the welcome
let name = sessionStorage.getItem("chat.name");
let token = sessionStorage.getItem("chat.token");     // our secret: proves who we are
let lastId = null;                                    // resume cursor for reconnects
const online = new Map();                             // id -> name

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

function eventsUrl() {
  // The token keeps our identity; the name is only used if the server forgot the token.
  const params = new URLSearchParams({ name });
  if (token) params.set("token", token);
  if (lastId) params.set("lastEventId", lastId);
  return `/chat/events?${params}`;
}

function connect() {
  showState("connecting");
  source = new EventSource(eventsUrl());
  source.onopen = () => showState("open");

  source.addEventListener("welcome", (event) => {
    const welcome = JSON.parse(event.data);
    me = welcome.user;
    token = welcome.token;
    sessionStorage.setItem("chat.token", token);
    online.clear();
    for (const user of welcome.online) online.set(user.id, user.name);
    $("me").textContent = me.name;
    $("join").hidden = true;
    $("room").hidden = false;
    showOnline();
  });

  source.addEventListener("message", (event) => {
    lastId = event.lastEventId;
    const message = JSON.parse(event.data);
    const item = document.createElement("li");
    if (me && message.from.id === me.id) item.classList.add("mine");
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = message.from.name;
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
      lastId = event.lastEventId;
      const { user } = JSON.parse(event.data);
      if (kind === "join") online.set(user.id, user.name); else online.delete(user.id);
      const item = document.createElement("li");
      item.className = "presence";
      item.textContent = `${user.name} ${kind === "join" ? "joined" : "left"}`;
      append(item);
      showOnline();
    });
  }

  // Missed too much (or the server restarted): start over from what it holds now.
  source.addEventListener("reset", () => { lastId = null; });

  // We reconnect ourselves rather than let the browser reuse the first URL: ours
  // carries the token and the last id we saw.
  source.onerror = () => {
    source.close();
    if (me === null) {
      // Never welcomed: the server refused the join (a bad name, or full). Ask again.
      showState("closed");
      $("join-error").textContent = "Could not join. Names are 1 to 32 characters, without control characters.";
      return;
    }
    showState("reconnecting");
    setTimeout(connect, RECONNECT_MS);
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
    item.textContent = who;
    if (me && id === me.id) item.className = "me";
    list.append(item);
  }
  $("online-count").textContent = String(online.size);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  name = $("name").value.trim();
  if (!name) return;
  sessionStorage.setItem("chat.name", name);
  $("join-error").textContent = "";
  connect();
});

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  if (!input.value.trim()) return;
  const response = await fetch("/chat/messages", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: input.value,
  });
  if (response.ok) {
    input.value = "";   // the message itself arrives through the stream
    $("send-error").textContent = "";
  } else {
    const error = await response.json().catch(() => ({ message: response.statusText }));
    $("send-error").textContent = error.message;
  }
});

if (name) connect();
