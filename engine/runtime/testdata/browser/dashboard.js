// The quickstart's dashboard in a real browser (Debian's chromium, driven by playwright-core),
// as engine/runtime TestQuickstartDashboardInABrowser runs it:
//
//   node dashboard.js API_URL EXPECTED_POINTS DAY_POINTS [SCREENSHOT.png]
//
// It checks what an operator sees, step by step, and asks the Go test to act between steps:
// it prints "step NAME" and waits for a line on stdin. A failed check exits 1 with the reason.
"use strict";
const readline = require("readline");
const { check: inBrowser, waitFor } = require("./browser");

const [url, expectedPoints, dayWant, screenshot] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function step(name) {
  console.log("step " + name);
  const { done } = await lines.next();
  if (done) throw new Error("the test stopped answering at step " + name);
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const panel = kind => `section.panel[data-kind="${kind}"]`;

inBrowser(async page => {
  const started = Date.now();
  await page.goto(url);
  // The chart draws every reading of the last hour: one point per row.
  const points = await waitFor(page, "the chart's points", (want) => {
    const s = document.querySelector('section.panel[data-kind="timeseries"]');
    return s && s.dataset.points === want && s.querySelector("canvas") ? Number(s.dataset.points) : 0;
  }, expectedPoints);
  const firstPaint = Date.now() - started;
  const series = await page.$eval(panel("timeseries"), s => s.dataset.series);
  check(series === "3", `the chart has ${series} series, want one per host (3)`);

  // What fires now is there on open, grouped by alert, with its source.
  await waitFor(page, "host-b firing on open", () => {
    const s = document.querySelector('section.panel[data-kind="firing"]');
    return s && s.dataset.firing === "1" && s.innerText.includes("host-b");
  });
  const group = await page.$eval(panel("firing") + " .group h3", h => h.innerText);
  check(group.startsWith("cpu_load"), `the firing alert is grouped under ${group}, want cpu_load`);
  const zone = await page.$eval("#zone", z => z.innerText);
  check(zone.includes("Europe/Berlin"), `the page says ${zone}, want the viewer's zone (Europe/Berlin)`);
  const stat = await page.$eval(`${panel("stat")}`, s => s.dataset.value);
  check(stat === "3", `hosts reporting: ${stat}, want 3`);
  // The history draws host-b's firing stretch on its timeline.
  const segments = await waitFor(page, "host-b's stretch on the history's timeline", () => {
    const t = document.querySelector('section.panel[data-kind="history"] .timeline');
    return t && t.dataset.segments === "1" && t.innerText.includes("host-b") ? 1 : 0;
  });
  check(segments === 1, "timeline");

  // A new alert appears live, without reloading the page.
  await step("fire host-c");
  await waitFor(page, "host-c appearing live", () => {
    const s = document.querySelector('section.panel[data-kind="firing"]');
    return s && s.dataset.firing === "2" && s.innerText.includes("host-c");
  });

  // A resolved one leaves.
  await step("resolve host-b");
  await waitFor(page, "host-b leaving once resolved", () => {
    const s = document.querySelector('section.panel[data-kind="firing"]');
    return s && s.dataset.firing === "1" && !s.innerText.includes("host-b") && s.innerText.includes("host-c");
  });

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // Dragging across the chart zooms the whole page to that stretch.
  const over = await page.$(panel("timeseries") + " .u-over");
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await waitFor(page, "the range set by dragging", () => document.getElementById("range").value === "custom" && document.getElementById("from").value !== "");
  await page.selectOption("#range", "1h");

  // One click from an alert to its series: the chart shows the time around the alert's
  // start with the alert's host in focus.
  await page.click(panel("firing") + ' button.open');
  await waitFor(page, "the chart focused on host-c", () => {
    const s = document.querySelector('section.panel[data-kind="timeseries"]');
    return s && s.dataset.focus === "host-c" && document.getElementById("range").value === "custom";
  });

  // The keyboard reaches the controls and the alert.
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  check(["INPUT", "SELECT", "BUTTON"].includes(focused), `Tab reaches ${focused}, want a control`);

  // On a phone, the panels stack and nothing runs off the side.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, `on a 390 px wide screen the page is ${overflow} px too wide`);

  const icon = await page.evaluate(async () => (await fetch("/favicon.ico")).status);
  check(icon === 200, `/favicon.ico: ${icon}`);

  // How fast a day of a fleet draws: a day of one-minute readings from 50 more hosts, the
  // page opened on the last 24 hours. A measurement, printed, not a check of its speed.
  await step("load a day of 50 hosts");
  await page.setViewportSize({ width: 1280, height: 900 });
  const dayStarted = Date.now();
  await page.goto(url + "?range=24h");
  const dayPoints = await waitFor(page, "a day of 53 hosts drawn", (want) => {
    const s = document.querySelector('section.panel[data-kind="timeseries"]');
    return s && Number(s.dataset.points) >= want && s.querySelector("canvas") ? Number(s.dataset.points) : 0;
  }, Number(dayWant));
  const dayPaint = Date.now() - dayStarted;
  const routeMs = await page.evaluate(async () => {
    const t0 = performance.now();
    const res = await fetch("/metrics/cpu/hosts?tenant=acme&from=" + new Date(Date.now() - 86400000).toISOString());
    await res.json();
    return Math.round(performance.now() - t0);
  });
  console.log("result " + JSON.stringify({ points, first_paint_ms: firstPaint, day_points: dayPoints, day_first_paint_ms: dayPaint, day_route_ms: routeMs }));
}, { timezoneId: "Europe/Berlin" });
