// examples/incidents.yaml's dashboard in Debian's chromium driven by playwright-core, as
// engine/runtime TestIncidentsDashboardNamesTheRootCause runs it:
//
//   node incidents.js API_URL
//
// After a failing database behind three services: the incidents panel shows one open
// incident naming db as its root cause with its four member alerts, and what fires now lists
// the four alerts. A failed check exits 1 with the reason.
"use strict";
const { check, waitFor } = require("./browser");

const [url] = process.argv.slice(2);

check(async page => {
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
  console.log("result {}");
});
