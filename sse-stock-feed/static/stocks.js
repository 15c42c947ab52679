"use strict";
// The stock page: a snapshot builds the table, price events update it, and each symbol
// has a small line chart drawn on a canvas (our own code: no CDN, works offline).
// Drawing happens once per animation frame, whatever the tick rate.

const $ = (id) => document.getElementById(id);
const POINTS = 120;                 // points kept per chart
const rows = new Map();             // symbol -> { row, price, change, canvas, series, dirty }
let received = 0;

// Pass ?symbols= from the page's own URL through to the stream.
const wanted = new URLSearchParams(location.search).get("symbols");
const url = wanted ? `/prices?symbols=${encodeURIComponent(wanted)}` : "/prices";

function showState(state) {
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

function rowFor(symbol) {
  let entry = rows.get(symbol);
  if (entry) return entry;
  const row = document.createElement("tr");
  row.dataset.symbol = symbol;
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = symbol;
  const price = document.createElement("td");
  price.className = "price";
  const change = document.createElement("td");
  change.className = "change";
  const chartCell = document.createElement("td");
  chartCell.className = "chart";
  const canvas = document.createElement("canvas");
  canvas.setAttribute("aria-label", `${symbol} price chart`);
  const range = document.createElement("div");
  range.className = "range muted";
  chartCell.append(canvas, range);
  row.append(name, price, change, chartCell);
  $("rows").append(row);
  entry = { row, price, change, canvas, range, series: [], dirty: true };
  rows.set(symbol, entry);
  return entry;
}

function show(quote, id) {
  const entry = rowFor(quote.symbol);
  entry.price.textContent = quote.price.toFixed(2);
  // An arrow as well as a colour, so the direction does not rest on colour alone.
  const [arrow, kind] = quote.change > 0 ? ["\u25B2", "up"] : quote.change < 0 ? ["\u25BC", "down"] : ["\u25A0", "flat"];
  entry.change.textContent = `${arrow} ${Math.abs(quote.change).toFixed(2)}`;
  entry.change.className = `change ${kind}`;
  if (id) entry.row.dataset.id = id;
  entry.series.push(quote.price);
  if (entry.series.length > POINTS) entry.series.shift();
  entry.dirty = true;
  $("updated").textContent = new Date(quote.at).toLocaleTimeString();
}

function draw(entry) {
  const { canvas, series } = entry;
  // The scale: the chart spans its lowest price to its highest.
  const low = Math.min(...series);
  const high = Math.max(...series);
  entry.range.textContent = series.length ? `${low.toFixed(2)} – ${high.toFixed(2)}` : "";
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio;
  const height = canvas.clientHeight * ratio;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  if (series.length < 2) return;
  const span = high - low || 1;
  const pad = 3 * ratio;
  const x = (i) => (i / (POINTS - 1)) * (width - 2 * pad) + pad;
  const y = (p) => height - pad - ((p - low) / span) * (height - 2 * pad);
  const rising = series[series.length - 1] >= series[0];
  g.lineWidth = 1.5 * ratio;
  g.strokeStyle = rising ? "#1b7f3b" : "#b3261e";
  g.beginPath();
  const offset = POINTS - series.length;
  series.forEach((p, i) => (i === 0 ? g.moveTo(x(offset + i), y(p)) : g.lineTo(x(offset + i), y(p))));
  g.stroke();
}

function frame() {
  for (const entry of rows.values()) {
    if (entry.dirty) {
      entry.dirty = false;
      draw(entry);
    }
  }
  requestAnimationFrame(frame);
}

// One stream for every tab showing these symbols (shared-stream.js); a tab that opens
// later has it reopened from the last id, so that tab gets a snapshot of its own.
// A refused stream is explained: a symbol the market does not have is a `400` whose
// message lists the ones it has, shown as it is, and not retried.
const source = sharedEventSource(url, ["snapshot", "price"], { reopenForNewTab: true, explain: true });
showState("connecting");
source.onopen = () => {
  showState("open");
  $("refused").textContent = "";
};
source.onerror = (event) => {
  showState(event.final ? "closed" : "reconnecting");
  if (event.reason) $("refused").textContent = event.reason;
};

// The current prices: sent first, and again after a reset.
source.addEventListener("snapshot", (event) => {
  const { prices } = JSON.parse(event.data);
  for (const quote of prices) show(quote, null);
});

source.addEventListener("price", (event) => {
  received += 1;
  $("received").textContent = String(received);
  show(JSON.parse(event.data), event.lastEventId);
});

requestAnimationFrame(frame);
