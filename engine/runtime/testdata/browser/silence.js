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
const { chromium } = require("playwright-core");

const [url, token] = process.argv.slice(2);

async function waitFor(page, what, fn, arg) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout: 20000, polling: 100 })).jsonValue();
  } catch (err) {
    throw new Error("waiting for " + what + ": " + err.message.split("\n")[0]);
  }
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const errors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", e => errors.push(e.message));
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
    if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    console.log("result {}");
  } catch (err) {
    const page = browser.contexts()[0] && browser.contexts()[0].pages()[0];
    if (page) err.message += "\npage: " + (await page.evaluate(() => document.body.innerText).catch(() => "?")).slice(0, 800) + "\nerrors: " + errors.join("; ");
    throw err;
  } finally {
    await browser.close();
  }
})().then(() => process.exit(0), err => {
  console.error(err.message);
  process.exit(1);
});
