// The quickstart's dashboard after README.md's steps (the seed's reading, dated
// 2025-10-16T09:00:00Z, sent with kcat), in Debian's chromium driven by playwright-core, as
// engine/runtime TestDashboardAfterTheREADMEsSteps runs it:
//
//   node readme.js API_URL [SCREENSHOT.png]
//
// Opened as a newcomer opens it (no range in the address), the page shows the hour up to
// that reading and says so: the reading on the chart, host-a's alert firing.
"use strict";
const { check, waitFor } = require("./browser");

const [url, screenshot] = process.argv.slice(2);

check(async page => {
  await page.goto(url);
  await waitFor(page, "the seed's reading on the chart and its alert", () => {
    const chart = document.querySelector('section.panel[data-kind="timeseries"]');
    const firing = document.querySelector('section.panel[data-kind="firing"]');
    return chart && chart.dataset.points === "1" && chart.querySelector("canvas") &&
      firing && firing.dataset.firing === "1" && firing.innerText.includes("host-a") &&
      document.getElementById("notice").innerText.includes("newest reading");
  });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log("result {}");
}, { timezoneId: "UTC" });
