// A series scored by the anomaly processor, charted with its band (testdata/browser/band.yaml),
// in Debian's chromium driven by playwright-core, as engine/runtime
// TestAnomalyBandOnTheDashboard runs it:
//
//   node band.js API_URL POINTS
//
// The chart draws every reading and, around the line, the band between the detector's lower
// and upper, with its expected value. A failed check exits 1 with the reason.
"use strict";
const { check, waitFor } = require("./browser");

const [url, want] = process.argv.slice(2);

check(async page => {
  await page.goto(url + "?range=7d");
  await waitFor(page, `${want} points and a band`, w => {
    const s = document.querySelector('section.panel[data-kind="timeseries"]');
    return s && s.dataset.points === w && s.dataset.bands === "1" && s.querySelector("canvas");
  }, want);
  const legend = await page.$eval('section.panel[data-kind="timeseries"] .u-legend', l => l.innerText);
  if (!legend.includes("host-a expected") || !legend.includes("host-a upper")) throw new Error("the legend lacks the band's series: " + legend);
  console.log("result {}");
});
