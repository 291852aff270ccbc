// examples/incidents.yaml's dashboard in Debian's chromium driven by playwright-core, as
// engine/runtime TestIncidentsDashboardNamesTheRootCause runs it:
//
//   node incidents.js API_URL
//
// After a failing database behind three services: the incidents panel shows one open
// incident naming db as its root cause with its four member alerts, and what fires now lists
// the four alerts. A failed check exits 1 with the reason.
"use strict";
const { chromium } = require("playwright-core");

const [url] = process.argv.slice(2);

async function waitFor(page, what, fn) {
  try {
    return await (await page.waitForFunction(fn, null, { timeout: 20000, polling: 100 })).jsonValue();
  } catch (err) {
    throw new Error("waiting for " + what + ": " + err.message.split("\n")[0] + "\npage: " + (await page.evaluate(() => document.body.innerText).catch(() => "?")).slice(0, 600));
  }
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", e => errors.push(e.message));
    page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url);
    await waitFor(page, "one open incident naming db, with its four alerts", () => {
      const s = document.querySelector('section.panel[data-kind="incidents"]');
      if (!s || s.dataset.incidents !== "1") return false;
      const text = s.innerText;
      return text.includes("root cause db") && ["error_rate/db", "error_rate/api", "error_rate/worker", "error_rate/web"].every(m => text.includes(m));
    });
    await waitFor(page, "the four alerts firing", () => {
      const s = document.querySelector('section.panel[data-kind="firing"]');
      return s && s.dataset.firing === "4";
    });
    if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    console.log("result {}");
  } finally {
    await browser.close();
  }
})().then(() => process.exit(0), err => {
  console.error(err.message);
  process.exit(1);
});
