// examples/notify.yaml's dashboard behind api.auth, in Debian's chromium driven by
// playwright-core, as engine/runtime TestNotifyDashboardSilencesAnAlert runs it:
//
//   node silence.js API_URL ADMIN_TOKEN
//
// The page asks for a token; with an admin token, the firing alert (host-a) has a Silence
// button; a click silences it: the alert says so and the silences panel lists the silence;
// Expire there ends it.
// A failed check exits 1 with the reason.
"use strict";
const { check, waitFor } = require("./browser");

const [url, token] = process.argv.slice(2);

// The first requests, without the token, are refused (401): that is the point.
check(async page => {
  await page.goto(url);
  await waitFor(page, "the token box", () => !document.getElementById("token-form").hidden);
  await page.fill("#token", token);
  await Promise.all([page.waitForNavigation(), page.press("#token", "Enter")]);

  await waitFor(page, "host-a firing, with a Silence button", () => {
    const s = document.querySelector('section.panel[data-kind="firing"]');
    return s && s.innerText.includes("host-a") && [...s.querySelectorAll("button")].some(b => b.innerText === "Silence");
  });
  await page.click('section.panel[data-kind="firing"] button:text("Silence")');
  await waitFor(page, "host-a silenced, and the silence listed", () => {
    const f = document.querySelector('section.panel[data-kind="firing"]');
    const s = document.querySelector('section.panel[data-kind="silences"]');
    return f && f.innerText.includes("SILENCED") && s && s.dataset.silences === "1" && s.innerText.includes("alertname=cpu_load");
  });
  // Un-silence: Expire in the silences panel.
  await page.click('section.panel[data-kind="silences"] button:text("Expire")');
  await waitFor(page, "the silence expired", () => {
    const s = document.querySelector('section.panel[data-kind="silences"]');
    return s && s.dataset.silences === "0" && s.innerText.includes("No active silence");
  });
  console.log("result {}");
}, {}, /status of 401/);
