"use strict";
// The notifications page: sign in (a signed HttpOnly cookie the stream sends for us),
// listen, and show each notification as a toast and in the list. The admin form
// publishes with the bearer token.

const $ = (id) => document.getElementById(id);
const MAX_KEPT = 200;
const TOAST_MS = 6000;
let source = null;

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

// Opening a new EventSource is how a new cookie takes effect: the browser sends the
// cookie with the request, and the server picks the user's private notifications by it.
function listen() {
  if (source) source.close();
  source = new EventSource("/notifications/stream");
  showState("connecting");
  source.onopen = () => showState("open");
  source.onerror = () => showState(source.readyState === EventSource.CONNECTING ? "reconnecting" : "closed");
  source.addEventListener("notification", (event) => show(JSON.parse(event.data)));
  source.addEventListener("reset", () => {
    // We fell behind (or the server restarted): what we missed is gone; go on.
    toast({ title: "Some notifications were missed", message: "The list continues from now.", level: "warning" });
  });
}

function show(notification) {
  const item = document.createElement("li");
  item.className = `level-${notification.level}`;
  item.dataset.id = String(notification.id);
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = notification.title;
  item.append(title, document.createTextNode(notification.message));
  if (notification.user) {
    const badge = document.createElement("span");
    badge.className = "private";
    badge.textContent = "just for you";
    item.append(badge);
  }
  const list = $("received");
  list.prepend(item);
  while (list.children.length > MAX_KEPT) list.lastChild.remove();
  toast(notification);
}

function toast(notification) {
  const box = document.createElement("div");
  box.className = `toast level-${notification.level}`;
  box.setAttribute("role", notification.level === "error" ? "alert" : "status");
  const title = document.createElement("strong");
  title.textContent = notification.title;
  box.append(title, document.createTextNode(notification.message));
  $("toasts").append(box);
  setTimeout(() => box.remove(), TOAST_MS);
}

async function errorText(response) {
  const body = await response.json().catch(() => ({ message: response.statusText }));
  return body.message;
}

$("session-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: $("user").value }),
  });
  if (response.ok) {
    const { user } = await response.json();
    $("who").textContent = user;
    // After a reload the cookie is still there; ask the server whose it is.
fetch("/session")
  .then((response) => response.json())
  .then(({ user }) => { if (user) $("who").textContent = user; })
  .catch(() => {});
listen();
  } else {
    $("who").textContent = await errorText(response);
  }
});

$("publish-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = $("target").value.trim();
  const response = await fetch("/notifications", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${$("token").value}` },
    body: JSON.stringify({
      title: $("title").value,
      message: $("message").value,
      level: $("level").value,
      user: target === "" ? null : target,
    }),
  });
  $("publish-result").textContent = response.ok
    ? `Published #${(await response.json()).id}${target ? ` for ${target}` : " to everyone"}.`
    : await errorText(response);
});

// After a reload the cookie is still there; ask the server whose it is.
fetch("/session")
  .then((response) => response.json())
  .then(({ user }) => { if (user) $("who").textContent = user; })
  .catch(() => {});
listen();
