// The EventOps dashboard: panels declared in the pipeline file (api.dashboard), read from
// /-/dashboard, each drawing one route of this API. No build step and nothing loaded from
// elsewhere: charts are uPlot (vendor/uplot), served from the binary like this file.
"use strict";

const POLL_MS = 15000;
const PALETTE = ["#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c2255c", "#5c7cfa", "#74b816", "#845ef7"];
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const RANGES = { "15m": 15 * 60, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

// ---- The API, with the token a person typed (kept for this tab only, never in a URL).

const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("eventops-token") || "";
document.getElementById("token-form").addEventListener("submit", e => {
  e.preventDefault();
  sessionStorage.setItem("eventops-token", tokenInput.value.trim());
  location.reload();
});

function api(path, init) {
  const headers = new Headers((init && init.headers) || {});
  const token = tokenInput.value.trim();
  if (token) headers.set("Authorization", "Bearer " + token);
  return fetch(path, Object.assign({}, init, { headers })).then(res => {
    if (res.status === 401) document.getElementById("token-form").hidden = false;
    return res;
  });
}

// getJSON answers a route's rows. Panels over the same route and range (a chart and its
// stats) share one request while it is in flight.
const inFlight = new Map();
function getJSON(path) {
  if (!inFlight.has(path)) {
    const p = fetchJSON(path);
    inFlight.set(path, p);
    p.finally(() => inFlight.delete(path)).catch(() => {});
  }
  return inFlight.get(path);
}

async function fetchJSON(path) {
  const res = await api(path);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body.error || res.status + " " + res.statusText);
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---- Small helpers.

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? "" : timeFormat.format(d);
}

function fmtAgo(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return Math.round(s / 86400) + " d";
}

// fmtValue writes a number with its unit: percent, bytes (KiB, MiB...), seconds, ms, or any
// word after the number.
function fmtValue(v, unit) {
  if (v === null || v === undefined || v === "") return "–";
  if (typeof v !== "number") return String(v);
  const n = x => Math.abs(x) >= 100 || Number.isInteger(x) ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2);
  switch (unit) {
    case "percent": case "%": return n(v) + " %";
    case "bytes": {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return n(v) + " " + units[i];
    }
    case "seconds": case "s": return v < 1 ? n(v * 1000) + " ms" : n(v) + " s";
    case "ms": return n(v) + " ms";
    case undefined: case null: case "": return n(v);
  }
  return n(v) + " " + unit;
}

function message(text, cls) { return el("p", { class: cls || "empty" }, text); }

// ---- The page's state: parameters, time range, and the panels drawn.

const state = { spec: null, params: {}, range: "1h", from: null, to: null, panels: [] };

function readAddress() {
  const q = new URLSearchParams(location.search);
  state.range = RANGES[q.get("range")] || q.get("range") === "custom" ? q.get("range") : "1h";
  if (state.range === "custom") {
    state.from = new Date(q.get("from"));
    state.to = new Date(q.get("to"));
    if (isNaN(state.from) || isNaN(state.to)) state.range = "1h";
  }
  for (const [k, v] of q) if (!["range", "from", "to"].includes(k)) state.params[k] = v;
}

function writeAddress() {
  const q = new URLSearchParams(state.params);
  q.set("range", state.range);
  if (state.range === "custom") {
    q.set("from", state.from.toISOString());
    q.set("to", state.to.toISOString());
  }
  history.replaceState(null, "", "?" + q.toString());
}

// window is the time range asked of the routes now, in seconds.
function timeWindow() {
  if (state.range === "custom") return { from: state.from.getTime() / 1000, to: state.to.getTime() / 1000, live: false };
  const to = Date.now() / 1000;
  return { from: to - RANGES[state.range], to, live: true };
}

function setRange(from, to) {
  state.range = "custom";
  state.from = new Date(from * 1000);
  state.to = new Date(to * 1000);
  showRange();
  writeAddress();
  refreshAll();
}

function showRange() {
  document.getElementById("range").value = state.range;
  const custom = document.getElementById("custom");
  custom.hidden = state.range !== "custom";
  if (state.range === "custom") {
    document.getElementById("from").value = localInput(state.from);
    document.getElementById("to").value = localInput(state.to);
  }
}

function localInput(d) {
  const p = x => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// routeURL is a route's address with the page's parameters (those the route takes) and,
// for timed panels, the time range.
function routeURL(path, timed, from) {
  const route = state.spec.routes.find(r => r.path === path) || {};
  const q = new URLSearchParams();
  for (const p of route.params || []) if (state.params[p] !== undefined) q.set(p, state.params[p]);
  if (timed) {
    const w = timeWindow();
    q.set("from", new Date((from !== undefined ? from : w.from) * 1000).toISOString());
    if (!w.live) q.set("to", new Date(w.to * 1000).toISOString());
  }
  const s = q.toString();
  return s ? path + "?" + s : path;
}

function routeLimit(path) {
  const route = state.spec.routes.find(r => r.path === path);
  return route ? route.limit : 0;
}

let liveStatus = "";
function setLive(text, ok) {
  const s = document.getElementById("live");
  s.textContent = text;
  s.className = "live " + (ok ? "ok" : "down");
  liveStatus = text;
}

// ---- Panels. Each kind is a function (spec, element) returning { load(), ... }.

function panelFrame(spec) {
  const note = el("span", { class: "note" });
  const body = el("div", { class: "body" });
  const section = el("section", { class: "panel " + spec.width, "data-kind": spec.kind, "aria-label": spec.title, tabindex: "-1" },
    el("h2", {}, el("span", {}, spec.title), note), body);
  return { section, note, body };
}

// Timeseries: the route's rows over the time range, a line per series; updated by polling
// the rows newer than the newest one drawn, into the same chart.
function timeseriesPanel(spec, frame) {
  let chart = null, names = [], points = new Map(), newest = null, focusName = null;

  function add(rows) {
    for (const r of rows) {
      const t = Date.parse(r[spec.time]) / 1000;
      const v = typeof r[spec.value] === "number" ? r[spec.value] : null;
      if (isNaN(t) || v === null) continue;
      const name = spec.series ? String(r[spec.series] ?? "–") : spec.value;
      if (!points.has(name)) points.set(name, new Map());
      const band = spec.band && r[spec.band] && typeof r[spec.band] === "object" ? r[spec.band] : null;
      points.get(name).set(t, band ? [v, band.expected, band.lower, band.upper] : [v]);
      if (newest === null || t > newest) newest = t;
    }
  }

  // data aligns every series on the union of their times, as uPlot draws them.
  function data() {
    const w = timeWindow();
    const xs = new Set();
    for (const m of points.values()) for (const [t] of m) if (t >= w.from) xs.add(t);
    const x = [...xs].sort((a, b) => a - b);
    const cols = [x];
    const banded = spec.band && points.size <= 3;
    for (const name of names) {
      const m = points.get(name);
      cols.push(x.map(t => (m.get(t) || [null])[0]));
      if (banded) for (const k of [1, 2, 3]) cols.push(x.map(t => { const p = m.get(t); return p && p[k] !== undefined ? p[k] : null; }));
    }
    return cols;
  }

  function options(width) {
    const series = [{}];
    const bands = [];
    const banded = spec.band && points.size <= 3;
    names.forEach((name, i) => {
      const color = PALETTE[i % PALETTE.length];
      series.push({ label: name, stroke: color, width: 1.5, spanGaps: false, value: (u, v) => fmtValue(v, spec.unit) });
      if (banded) {
        const base = series.length;
        series.push({ label: name + " expected", stroke: color, width: 1, dash: [4, 4], value: (u, v) => fmtValue(v, spec.unit) });
        series.push({ label: name + " lower", stroke: "transparent", points: { show: false }, value: (u, v) => fmtValue(v, spec.unit) });
        series.push({ label: name + " upper", stroke: "transparent", points: { show: false }, value: (u, v) => fmtValue(v, spec.unit) });
        bands.push({ series: [base + 2, base + 1], fill: color + "22" });
      }
    });
    return {
      width, height: 260, series, bands,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, splits) => splits.map(v => fmtValue(v, spec.unit)), size: 64 }],
      cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
      focus: { alpha: 0.25 },
      legend: { live: true },
      hooks: {
        setSelect: [u => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0 }, false);
          setRange(from, to);
        }],
        draw: [u => drawThresholds(u, spec.thresholds || [])],
      },
    };
  }

  function draw() {
    const d = data();
    const count = d.slice(1).reduce((n, col, i) => n + (isValueColumn(i) ? col.filter(v => v !== null).length : 0), 0);
    frame.section.dataset.points = String(count);
    frame.section.dataset.series = String(names.length);
    frame.section.dataset.bands = String(spec.band && points.size <= 3 ? names.length : 0);
    if (d[0].length === 0) {
      if (chart) { chart.destroy(); chart = null; }
      frame.body.replaceChildren(message("No rows in this time range. Readings sent to the pipeline appear here within seconds; pick a longer range above, or check the route's parameters."));
      return;
    }
    const width = Math.max(200, frame.body.clientWidth || frame.section.clientWidth - 28);
    if (!chart || chart.series.length !== options(width).series.length) {
      if (chart) chart.destroy();
      const target = el("div", { class: "chart" });
      frame.body.replaceChildren(target);
      chart = new uPlot(options(width), d, target);
    } else {
      chart.setData(d);
    }
    const w = timeWindow();
    chart.setScale("x", { min: w.from, max: w.to });
    if (focusName !== null) focus(focusName);
  }

  function isValueColumn(i) {
    return !(spec.band && points.size <= 3) || i % 4 === 0;
  }

  async function load() {
    points = new Map(); newest = null;
    try {
      const rows = await getJSON(routeURL(spec.route, true));
      add(rows);
      names = [...points.keys()].sort();
      const limit = routeLimit(spec.route);
      frame.note.textContent = limit && rows.length >= limit ? `the route's limit of ${limit} rows was reached: the oldest are not drawn` : `${names.length} series`;
      draw();
    } catch (err) {
      frame.body.replaceChildren(message(String(err.message || err), "error"));
    }
  }

  async function poll() {
    if (!timeWindow().live || newest === null) return load();
    try {
      add(await getJSON(routeURL(spec.route, true, newest)));
      const known = names.length;
      names = [...points.keys()].sort();
      if (names.length !== known && chart) { chart.destroy(); chart = null; }
      draw();
    } catch (err) {
      frame.note.textContent = "not updated: " + (err.message || err);
    }
  }

  // focus highlights one series (an alert's source), the others faded.
  function focus(name) {
    focusName = name;
    frame.section.dataset.focus = name;
    if (!chart) return;
    const idx = chart.series.findIndex(s => s.label === name);
    if (idx > 0) chart.setSeries(idx, { focus: true });
  }

  window.addEventListener("resize", () => { if (chart) chart.setSize({ width: frame.body.clientWidth, height: 260 }); });
  return { load, poll, focus, spec, frame };
}

function drawThresholds(u, thresholds) {
  const colors = { critical: "#c62828", warning: "#b26a00", info: "#1f6feb" };
  const ctx = u.ctx;
  for (const t of thresholds) {
    const y = u.valToPos(t.value, "y", true);
    if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
    ctx.save();
    ctx.strokeStyle = colors[t.severity] || colors.warning;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(t.label || String(t.value), u.bbox.left + 4 * devicePixelRatio, y - 3 * devicePixelRatio);
    ctx.restore();
  }
}

// Stat: one number from the rows of the time range.
function statPanel(spec, frame) {
  async function load() {
    try {
      const rows = await getJSON(routeURL(spec.route, true));
      const values = rows.map(r => r[spec.value]);
      const nums = values.filter(v => typeof v === "number");
      let v = null;
      switch (spec.reduce) {
        case "count": v = rows.length; break;
        case "distinct": v = new Set(values.map(x => JSON.stringify(x))).size; break;
        case "max": v = nums.length ? Math.max(...nums) : null; break;
        case "min": v = nums.length ? Math.min(...nums) : null; break;
        case "sum": v = nums.reduce((a, b) => a + b, 0); break;
        case "avg": v = nums.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null; break;
        default: {
          const newest = rows.reduce((best, r) => !best || String(r.ts) > String(best.ts) ? r : best, null);
          v = newest ? newest[spec.value] : null;
        }
      }
      const level = typeof v === "number" && spec.critical !== undefined && v >= spec.critical ? "critical"
        : typeof v === "number" && spec.warning !== undefined && v >= spec.warning ? "warning" : "";
      const unitless = ["count", "distinct"].includes(spec.reduce);
      const text = unitless ? String(v) : fmtValue(v, "");
      const unit = unitless ? "" : unitLabel(spec.unit);
      frame.section.dataset.value = v === null ? "" : String(v);
      frame.body.replaceChildren(
        v === null ? message("No rows in this time range.") : el("div", { class: "stat " + level }, text, unit ? el("span", { class: "unit" }, unit) : null),
        el("div", { class: "stat-note" }, `${spec.reduce} of ${rows.length} rows`));
    } catch (err) {
      frame.body.replaceChildren(message(String(err.message || err), "error"));
    }
  }
  return { load, poll: load, spec, frame };
}

function unitLabel(unit) {
  return { percent: "%", seconds: "s", bytes: "B" }[unit] || unit || "";
}

// alertSource names where an alert fires (a host, a service), whichever record shape it has.
function alertSource(a) {
  const s = a.series || {};
  return a.source_id || (a.source && a.source.source_id) || s["source.source_id"] || s.source_id || s.host || s.service || (a.labels || {}).host || "";
}

function alertStart(a) { return a.started_at || a.fired_at || a.ts; }

// Firing: the newest row of each alert from the route when the page opens, then kept live
// by the stream: a firing alert appears, a resolved one leaves.
function firingPanel(spec, frame) {
  let firing = new Map();
  let events = [];   // the stream's recent events, replayed on every read of the table
  let loaded = false;
  // notified: the pipeline's notify processors' view of each alert (/api/v2/alerts, by the
  // alert record's fingerprint, sourceFingerprint): its labels, which a silence matches, and the silences muting it. Null when
  // the pipeline has no notify processor.
  let notified = null;

  function apply(a) {
    if (!a || !a.fingerprint) return;
    const known = firing.get(a.fingerprint);
    if (known && String(a.ts || "") < String(known.ts || "")) return; // older than what is shown
    if (a.state === "firing") firing.set(a.fingerprint, a);
    else if (a.state === "resolved" || a.state === "inactive") firing.delete(a.fingerprint);
  }

  // load reads what fires from the table, then replays the stream's events on it (an
  // event newer than the table's row wins): the table may lag the stream by a moment, and it
  // is read again at every poll, so an alert the page missed still comes.
  async function load() {
    try {
      const [rows] = await Promise.all([getJSON(routeURL(spec.route, false)), loadNotified()]);
      firing = new Map();
      for (const r of rows) if (r.state === "firing") firing.set(r.fingerprint, r);
      loaded = true;
      const horizon = Date.now() - 10 * 60 * 1000;
      events = events.filter(a => Date.parse(a.ts) >= horizon || isNaN(Date.parse(a.ts)));
      for (const a of events) apply(a);
      render();
    } catch (err) {
      frame.body.replaceChildren(message(String(err.message || err), "error"));
    }
  }

  function render() {
    frame.section.dataset.firing = String(firing.size);
    frame.note.textContent = firing.size ? `${firing.size} firing` : "";
    if (!firing.size) {
      frame.body.replaceChildren(message("Nothing fires now. Alerts that fire appear here as they do."));
      return;
    }
    const groups = new Map();
    for (const a of firing.values()) {
      const name = a.rule || a.alertname || "alert";
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(a);
    }
    const rank = a => SEVERITY_RANK[a.severity] ?? 3;
    const sorted = [...groups.entries()].sort((x, y) => Math.min(...x[1].map(rank)) - Math.min(...y[1].map(rank)) || x[0].localeCompare(y[0]));
    const out = [];
    for (const [name, alerts] of sorted) {
      alerts.sort((x, y) => rank(x) - rank(y) || String(alertStart(x)).localeCompare(String(alertStart(y))));
      out.push(el("div", { class: "group", "data-rule": name },
        el("h3", {}, name, el("span", { class: "count" }, String(alerts.length))),
        el("ul", { class: "alerts" }, ...alerts.map(alertItem))));
    }
    frame.body.replaceChildren(el("div", { class: "scroll" }, ...out));
  }

  async function loadNotified() {
    if (!state.spec.notify) return;
    try {
      const alerts = await getJSON("/api/v2/alerts");
      notified = new Map(alerts.map(x => [x.sourceFingerprint || x.fingerprint, x]));
    } catch {
      notified = null;
    }
  }

  // silence mutes an alert for two hours: a silence on its labels (severity aside, so that an
  // escalation stays muted), as Alertmanager's own "silence" button does. It needs a token
  // with scope admin.
  async function silence(a) {
    const n = notified && notified.get(a.fingerprint);
    if (!n) return;
    const matchers = Object.entries(n.labels).filter(([k]) => k !== "severity")
      .map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    const now = new Date();
    const res = await api("/api/v2/silences", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ matchers, startsAt: now.toISOString(), endsAt: new Date(now.getTime() + 2 * 3600 * 1000).toISOString(), createdBy: "dashboard", comment: "silenced from the dashboard for 2 h" }),
    });
    if (!res.ok) {
      frame.note.textContent = res.status === 403 ? "silencing needs a token with scope admin" : "not silenced: " + (await res.text());
      return;
    }
    await loadNotified();
    render();
    for (const p of state.panels) if (p.spec.kind === "silences") p.load();
  }

  function alertItem(a) {
    const sev = String(a.severity || "info").toLowerCase();
    const n = notified && notified.get(a.fingerprint);
    const silenced = n && n.status && n.status.silencedBy && n.status.silencedBy.length > 0;
    const source = alertSource(a);
    const labels = Object.entries(a.labels || {}).map(([k, v]) => el("span", {}, `${k}=${v}`));
    const ann = a.annotations || {};
    const runbook = ann.runbook_url || ann.runbook;
    return el("li", { class: sev, "data-fingerprint": a.fingerprint },
      el("span", { class: "sev " + sev }, sev),
      el("div", { class: "body" },
        el("button", { class: "open", type: "button", title: "Show the series around the alert's start", onclick: () => openChart(a) },
          source ? `${source}` : (a.message || a.fingerprint)),
        el("div", { class: "meta" },
          `since ${fmtTime(alertStart(a))} (${fmtAgo(alertStart(a))})`,
          a.value !== undefined && a.value !== null ? ` · value ${fmtValue(a.value)}` : "",
          a.message ? ` · ${a.message}` : ""),
        labels.length ? el("div", { class: "labels" }, ...labels) : null,
        runbook ? el("a", { href: runbook, target: "_blank", rel: "noopener noreferrer" }, "runbook") : null),
      silenced ? el("span", { class: "sev pending", title: "muted by " + n.status.silencedBy.join(", ") }, "silenced")
        : n ? el("button", { class: "small", type: "button", title: "Silence this alert for 2 hours (needs an admin token)", onclick: () => silence(a) }, "Silence") : null);
  }

  function openChart(a) {
    const charts = state.panels.filter(p => p.spec.kind === "timeseries");
    const chart = charts.find(p => p.spec.title === spec.chart) || charts[0];
    if (!chart) return;
    const start = Date.parse(alertStart(a)) / 1000;
    const now = Date.now() / 1000;
    setRange(start - 1800, Math.min(now, start + 1800) > start + 300 ? Math.min(now, start + 1800) : start + 1800);
    chart.focus(alertSource(a));
    chart.frame.section.scrollIntoView({ block: "center" });
    chart.frame.section.focus({ preventScroll: true });
  }

  if (spec.stream) {
    follow(spec.stream, a => {
      events.push(a);
      if (events.length > 5000) events.splice(0, events.length - 5000); // a page left open for days
      if (loaded) { apply(a); render(); }
    });
  }
  return { load, poll: load, spec, frame };
}

// History: the alert transitions of the time range, newest first.
function historyPanel(spec, frame) {
  async function load() {
    try {
      const rows = await getJSON(routeURL(spec.route, true));
      rows.sort((x, y) => String(y.ts).localeCompare(String(x.ts)));
      frame.section.dataset.rows = String(rows.length);
      frame.note.textContent = rows.length ? `${rows.length} transitions` : "";
      if (!rows.length) {
        frame.body.replaceChildren(message("No alert changed state in this time range."));
        return;
      }
      const table = el("table", {},
        el("thead", {}, el("tr", {}, ...["Time", "Alert", "Source", "State", "Value", "Message"].map(h => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows.slice(0, 500).map(r => el("tr", {},
          el("td", { class: "time" }, fmtTime(r.ts)),
          el("td", {}, r.rule || ""),
          el("td", { class: "time" }, alertSource(r)),
          el("td", {}, el("span", { class: "sev " + (r.state === "firing" ? String(r.severity || "info") : r.state) }, r.state === "firing" ? r.severity || "firing" : r.state)),
          el("td", { class: "num" }, fmtValue(r.value)),
          el("td", {}, r.message || "")))));
      frame.body.replaceChildren(timeline(rows), el("div", { class: "scroll" }, table));
    } catch (err) {
      frame.body.replaceChildren(message(String(err.message || err), "error"));
    }
  }
  return { load, poll: load, spec, frame };
}

// timeline draws each alert of the transitions as a track over the time range: a bar for
// each stretch it fired, coloured by severity, open to the range's end while it fires.
function timeline(rows) {
  const w = timeWindow();
  const span = w.to - w.from;
  const tracks = new Map();
  for (const r of [...rows].sort((x, y) => String(x.ts).localeCompare(String(y.ts)))) {
    const key = r.fingerprint || (r.rule + "/" + alertSource(r));
    if (!tracks.has(key)) tracks.set(key, { name: `${r.rule || "alert"} · ${alertSource(r)}`, bars: [], open: null });
    const tr = tracks.get(key);
    const t = Date.parse(r.ts) / 1000;
    if (tr.open && (r.state !== "firing" || r.severity !== tr.open.severity)) {
      tr.bars.push({ from: tr.open.from, to: t, severity: tr.open.severity });
      tr.open = null;
    }
    if (r.state === "firing") tr.open = { from: t, severity: r.severity || "info" };
  }
  const pct = t => Math.min(100, Math.max(0, (t - w.from) / span * 100));
  let segments = 0;
  const out = el("div", { class: "timeline", "aria-label": "When each alert fired" });
  for (const tr of tracks.values()) {
    if (tr.open) tr.bars.push({ from: tr.open.from, to: w.to, severity: tr.open.severity });
    const track = el("div", { class: "track" });
    for (const b of tr.bars) {
      segments++;
      const bar = el("span", { class: "bar " + b.severity, title: `${b.severity} from ${fmtTime(b.from * 1000)} to ${fmtTime(b.to * 1000)}` });
      // Through the CSSOM: the page's policy allows no inline style attribute.
      bar.style.left = pct(b.from) + "%";
      bar.style.width = Math.max(0.5, pct(b.to) - pct(b.from)) + "%";
      track.append(bar);
    }
    out.append(el("div", { class: "lane" }, el("span", { class: "lane-name" }, tr.name), track));
  }
  out.dataset.segments = String(segments);
  return out;
}

// Incidents: open incidents with their root cause and members.
function incidentsPanel(spec, frame) {
  let incidents = new Map();
  function apply(i) {
    if (!i || !i.incident_id) return;
    if (i.state === "open") incidents.set(i.incident_id, i);
    else incidents.delete(i.incident_id);
  }
  function render() {
    frame.section.dataset.incidents = String(incidents.size);
    if (!incidents.size) {
      frame.body.replaceChildren(message("No open incident."));
      return;
    }
    frame.body.replaceChildren(el("ul", { class: "alerts" }, ...[...incidents.values()].map(i => el("li", { class: "critical" },
      el("div", { class: "body" },
        el("strong", {}, i.title || i.incident_id),
        el("div", { class: "meta" }, `root cause ${i.root_cause} (confidence ${fmtValue(i.confidence)}) · ${i.size} alerts, ${i.firing} firing · opened ${fmtTime(i.opened_at)}`),
        el("div", { class: "labels" }, ...(i.members || []).slice(0, 12).map(m => el("span", {}, memberText(m)))))))));
  }
  async function load() {
    if (!spec.route) { render(); return; }
    try {
      incidents = new Map();
      const rows = await getJSON(routeURL(spec.route, false));
      rows.sort((x, y) => String(x.ts).localeCompare(String(y.ts)));
      rows.forEach(apply);
      render();
    } catch (err) {
      frame.body.replaceChildren(message(String(err.message || err), "error"));
    }
  }
  if (spec.stream) follow(spec.stream, i => { apply(i); render(); });
  return { load, poll: () => {}, spec, frame };
}

// memberText names an incident's member alert: rule/node, and resolved when it is.
function memberText(m) {
  if (typeof m !== "object" || m === null) return String(m);
  const name = [m.rule, m.node].filter(Boolean).join("/") || m.fingerprint || "";
  return m.state === "resolved" ? name + " (resolved)" : name;
}

// Silences: those of the pipeline's notify processors.
function silencesPanel(spec, frame) {
  async function load() {
    if (!state.spec.notify) {
      frame.body.replaceChildren(message("Silences need a notify processor in the pipeline (docs/notify.md)."));
      return;
    }
    try {
      const all = await getJSON("/api/v2/silences");
      const active = all.filter(s => s.status && s.status.state === "active");
      frame.section.dataset.silences = String(active.length);
      if (!active.length) {
        frame.body.replaceChildren(message("No active silence."));
        return;
      }
      frame.body.replaceChildren(el("ul", { class: "alerts" }, ...active.map(s => el("li", {},
        el("div", { class: "body" },
          el("strong", {}, (s.matchers || []).map(m => `${m.name}${m.isEqual === false ? "!" : ""}${m.isRegex ? "=~" : "="}${m.value}`).join(", ")),
          el("div", { class: "meta" }, `until ${fmtTime(s.endsAt)} · by ${s.createdBy || "?"}${s.comment ? " · " + s.comment : ""}`)),
        el("button", { class: "small", type: "button", onclick: () => expire(s.id) }, "Expire")))));
    } catch (err) {
      const text = err.status === 404 || err.status === 503 ? "Silences need a notify processor in the pipeline (docs/notify.md)." : String(err.message || err);
      frame.body.replaceChildren(message(text, err.status === 404 || err.status === 503 ? "empty" : "error"));
    }
  }
  async function expire(id) {
    const res = await api("/api/v2/silence/" + encodeURIComponent(id), { method: "DELETE" });
    if (res.status === 403) alert("Expiring a silence needs a token with scope admin.");
    load();
  }
  return { load, poll: load, spec, frame };
}

const KINDS = { timeseries: timeseriesPanel, stat: statPanel, firing: firingPanel, history: historyPanel, incidents: incidentsPanel, silences: silencesPanel };

// ---- Streams: Server-Sent Events read with fetch (EventSource cannot send a token),
// resuming with Last-Event-ID after a drop. One reader per stream route, shared.

const streams = new Map();
function follow(path, onRecord) {
  if (streams.has(path)) { streams.get(path).push(onRecord); return; }
  const listeners = [onRecord];
  streams.set(path, listeners);
  const route = state.spec.routes.find(r => r.path === path) || {};
  let lastID = "";
  async function connect() {
    try {
      const res = await api(routeURL(path, false), { headers: lastID ? { "Last-Event-ID": lastID } : {} });
      if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error || res.statusText);
      setLive("live", true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = "message", id = null;
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (id !== null) lastID = id;
          if (!data.length || event !== (route.event || "message")) continue;
          let rec;
          try { rec = JSON.parse(data.join("\n")); } catch { continue; }
          for (const l of listeners) l(rec);
        }
      }
      setLive("reconnecting…", false);
    } catch (err) {
      setLive("stream: " + (err.message || err), false);
    }
    setTimeout(connect, 2000);
  }
  connect();
}

// ---- Start.

function refreshAll() {
  for (const p of state.panels) p.load();
}

function buildControls() {
  document.title = state.spec.title;
  document.getElementById("title").textContent = state.spec.title;
  document.getElementById("zone").textContent = "times in " + ZONE;
  const needed = new Set();
  for (const p of state.spec.panels) {
    for (const path of [p.route, p.stream]) {
      const route = state.spec.routes.find(r => r.path === path);
      if (route) for (const q of route.params || []) needed.add(q);
    }
  }
  const params = document.getElementById("params");
  for (const name of [...needed].sort()) {
    if (state.params[name] === undefined) state.params[name] = state.spec.params[name] ?? "";
    const input = el("input", { type: "text", name, value: state.params[name], "aria-label": name });
    input.addEventListener("change", () => { state.params[name] = input.value.trim(); writeAddress(); refreshAll(); });
    params.append(el("label", {}, name, input));
  }
  const range = document.getElementById("range");
  range.addEventListener("change", () => {
    if (range.value === "custom") {
      const w = timeWindow();
      state.from = new Date(w.from * 1000); state.to = new Date(w.to * 1000);
    }
    state.range = range.value;
    showRange(); writeAddress(); refreshAll();
  });
  document.getElementById("controls").addEventListener("submit", e => {
    e.preventDefault();
    const from = new Date(document.getElementById("from").value), to = new Date(document.getElementById("to").value);
    if (isNaN(from) || isNaN(to) || from >= to) return;
    setRange(from.getTime() / 1000, to.getTime() / 1000);
  });
  showRange();
}

// openOnNewestData: a page opened without a range (no ?range=) whose first chart has nothing
// in the default hour opens on the hour before its newest row instead, and says so: a
// reading sent with an old timestamp (the README's seed reading) is then on the chart.
async function openOnNewestData() {
  const chart = state.spec.panels.find(p => p.kind === "timeseries");
  if (!chart) return;
  try {
    if ((await getJSON(routeURL(chart.route, true))).length) return;
    const rows = await getJSON(routeURL(chart.route, false));
    const newest = rows.reduce((m, r) => Math.max(m, Date.parse(r[chart.time]) / 1000 || 0), 0);
    if (!newest) return;
    state.range = "custom";
    state.from = new Date((newest - 3600) * 1000);
    state.to = new Date((newest + 300) * 1000);
    showRange();
    writeAddress();
    document.getElementById("notice").textContent = `nothing in the last hour: showing the hour up to the newest reading (${fmtTime(newest * 1000)})`;
  } catch {
    // the panels say what is wrong
  }
}

async function start() {
  const explicitRange = new URLSearchParams(location.search).has("range");
  readAddress();
  const main = document.getElementById("panels");
  try {
    state.spec = await getJSON("/-/dashboard");
  } catch (err) {
    main.replaceChildren(message(err.status === 401 ? "This engine asks for an API token: type it above." : "Cannot load the dashboard: " + (err.message || err), "error"));
    return;
  }
  buildControls();
  writeAddress();
  if (!explicitRange) await openOnNewestData();
  if (!state.spec.panels.length) {
    main.replaceChildren(message("No panels: declare some under api.dashboard.panels in the pipeline file, or routes over the metrics and alerts tables for the default overview (docs/dashboard.md)."));
    return;
  }
  main.replaceChildren();
  for (const spec of state.spec.panels) {
    const frame = panelFrame(spec);
    main.append(frame.section);
    const make = KINDS[spec.kind];
    if (make) state.panels.push(make(spec, frame));
  }
  if (!liveStatus) setLive("polling every " + POLL_MS / 1000 + " s", true);
  refreshAll();
  setInterval(() => { for (const p of state.panels) if (timeWindow().live) p.poll(); }, POLL_MS);
}

start();
