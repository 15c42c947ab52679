"use strict";
// The notifications page: sign in (POST /session, with the admin token, stands in for
// your app's login: it sets an HttpOnly cookie holding a JWT that the stream sends for
// us), listen, and show each notification as a toast and in the list. The admin form
// publishes with the same bearer token.

const $ = (id) => document.getElementById(id);
const MAX_KEPT = 200;
const TOAST_MS = 6000;
let source = null;

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

// One stream for every tab of the page (shared-stream.js). Opening it again is how a new
// cookie takes effect: the browser sends the cookie with the request, and the server
// picks the user's private notifications by it. Every tab shares the cookie, so the
// stream every tab hears is reopened (from its last id: nothing is missed).
function listen() {
  if (source) {
    source.reopen();
    return;
  }
  source = sharedEventSource("/notifications/stream", ["notification", "session-expired", "reset"]);
  showState("connecting");
  source.onopen = () => showState("open");
  source.onerror = () => showState(source.readyState === EventSource.CONNECTING ? "reconnecting" : "closed");
  source.addEventListener("notification", (event) => show(JSON.parse(event.data)));
  source.addEventListener("session-expired", () => {
    // The server ended the stream at the token's expiry; the browser has dropped the
    // cookie too, so EventSource's own reconnect resumes with broadcasts only.
    nobody();
    toast({ title: "Session expired", message: "Sign in again for your own notifications.", level: "warning" });
  });
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

function nobody() {
  $("who").textContent = "nobody (broadcasts only)";
}

$("session-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/session", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${$("token").value}` },
    body: JSON.stringify({ user: $("user").value }),
  });
  if (response.ok) {
    const { user } = await response.json();
    $("who").textContent = user;
    $("session-error").textContent = "";
    listen();
  } else {
    // Who is signed in has not changed: the refusal has a place of its own.
    $("session-error").textContent = await errorText(response);
  }
});

$("sign-out").addEventListener("click", async () => {
  await fetch("/session", { method: "DELETE" });
  $("session-error").textContent = "";
  nobody();
  listen();
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
