// The quickstart's dashboard after README.md's steps (the seed's reading, dated
// 2025-10-16T09:00:00Z, sent with kcat), in Debian's chromium driven by playwright-core, as
// engine/runtime TestDashboardAfterTheREADMEsSteps runs it:
//
//   node readme.js API_URL [SCREENSHOT.png]
//
// Opened as a newcomer opens it (no range in the address), the page shows the hour up to
// that reading and says so: the reading on the chart, host-a's alert firing.
"use strict";
const { chromium } = require("playwright-core");

const [url, screenshot] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: "UTC" });
    page.on("pageerror", e => errors.push(e.message));
    page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url);
    try {
      await page.waitForFunction(() => {
        const chart = document.querySelector('section.panel[data-kind="timeseries"]');
        const firing = document.querySelector('section.panel[data-kind="firing"]');
        return chart && chart.dataset.points === "1" && chart.querySelector("canvas") &&
          firing && firing.dataset.firing === "1" && firing.innerText.includes("host-a") &&
          document.getElementById("notice").innerText.includes("newest reading");
      }, null, { timeout: 20000, polling: 100 });
    } catch (err) {
      throw new Error("waiting for the seed's reading on the chart and its alert: " + (await page.evaluate(() => document.body.innerText)).slice(0, 600));
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    console.log("result {}");
  } finally {
    await browser.close();
  }
})().then(() => process.exit(0), err => {
  console.error(err.message);
  process.exit(1);
});
