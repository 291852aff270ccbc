// A series scored by the anomaly processor, charted with its band (testdata/browser/band.yaml),
// in Debian's chromium driven by playwright-core, as engine/runtime
// TestAnomalyBandOnTheDashboard runs it:
//
//   node band.js API_URL POINTS
//
// The chart draws every reading and, around the line, the band between the detector's lower
// and upper, with its expected value. A failed check exits 1 with the reason.
"use strict";
const { chromium } = require("playwright-core");

const [url, want] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", e => errors.push(e.message));
    page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(url + "?range=7d");
    try {
      await page.waitForFunction(w => {
        const s = document.querySelector('section.panel[data-kind="timeseries"]');
        return s && s.dataset.points === w && s.dataset.bands === "1" && s.querySelector("canvas");
      }, want, { timeout: 20000, polling: 100 });
    } catch (err) {
      const s = await page.$eval('section.panel[data-kind="timeseries"]', s => JSON.stringify(s.dataset) + " " + s.innerText.slice(0, 300)).catch(() => "?");
      throw new Error(`waiting for ${want} points and a band: ${s}`);
    }
    const legend = await page.$eval('section.panel[data-kind="timeseries"] .u-legend', l => l.innerText);
    if (!legend.includes("host-a expected") || !legend.includes("host-a upper")) throw new Error("the legend lacks the band's series: " + legend);
    if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    console.log("result {}");
  } finally {
    await browser.close();
  }
})().then(() => process.exit(0), err => {
  console.error(err.message);
  process.exit(1);
});
