// The topic explorer: matchers to subscribe with, one EventSource for all of them,
// and a form that publishes with a bearer token. Every text from the hub is set with
// textContent: data from other publishers never becomes markup.
"use strict";

const hub = "/.well-known/mercure";
const matchers = []; // [param, pattern]
let source = null;

const $ = (id) => document.getElementById(id);

function showMatchers() {
  const list = $("matchers");
  list.replaceChildren();
  matchers.forEach(([param, pattern], i) => {
    const item = document.createElement("li");
    item.textContent = `${param === "match" ? "exact" : "pattern"}: ${pattern} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `remove ${pattern}`);
    remove.addEventListener("click", () => {
      matchers.splice(i, 1);
      showMatchers();
      if (source) connect();
    });
    item.append(remove);
    list.append(item);
  });
}

function show(event) {
  const item = document.createElement("li");
  const head = document.createElement("div");
  head.textContent = `${event.type} ${event.lastEventId}`;
  head.className = "topic";
  const data = document.createElement("pre");
  data.textContent = event.data;
  item.append(head, data);
  $("log").prepend(item);
  while ($("log").children.length > 200) $("log").lastChild.remove();
}

function connect() {
  if (source) source.close();
  if (matchers.length === 0) {
    $("status").textContent = "add a matcher first";
    return;
  }
  const url = new URL(hub, location.origin);
  for (const [param, pattern] of matchers) url.searchParams.append(param, pattern);
  source = new EventSource(url);
  $("status").textContent = "connecting";
  source.onopen = () => { $("status").textContent = `connected (${matchers.length} matchers)`; };
  source.onerror = () => { $("status").textContent = "reconnecting"; };
  source.onmessage = show;
}

$("matcher-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const pattern = $("pattern").value.trim();
  if (!pattern) return;
  matchers.push([$("match-type").value, pattern]);
  $("pattern").value = "";
  showMatchers();
  if (source) connect();
});

$("connect").addEventListener("click", connect);

$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new URLSearchParams();
  form.append("topic", $("topic").value);
  form.append("data", $("data").value);
  if ($("private").checked) form.append("private", "on");
  const headers = {};
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const res = await fetch(hub, { method: "POST", headers, body: form });
    const text = await res.text();
    if (res.ok) {
      $("published").textContent = `published as ${text}`;
    } else {
      let message = text;
      try { message = JSON.parse(text).message; } catch (_) { /* not JSON */ }
      $("published").textContent = `refused (${res.status}): ${message}`;
    }
  } catch (err) {
    $("published").textContent = `cannot reach the hub: ${err}`;
  }
});
