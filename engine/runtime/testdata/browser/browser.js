// What the dashboard's browser checks share: a chromium page (Debian's, driven by
// playwright-core) whose errors are collected, and waiting for a condition in it.
"use strict";
const { chromium } = require("playwright-core");

// check runs body(page) in a fresh page of 1280 × 900 (pageOptions added), fails when the
// page logged an error (unless allowed matches it), and exits: 0, or 1 with the reason.
function check(body, pageOptions, allowed) {
  (async () => {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage(Object.assign({ viewport: { width: 1280, height: 900 } }, pageOptions));
      const errors = [];
      page.on("pageerror", e => errors.push(e.message));
      page.on("console", m => { if (m.type() === "error" && !(allowed && allowed.test(m.text()))) errors.push(m.text()); });
      await body(page);
      if (errors.length) throw new Error("errors in the page: " + errors.join("; "));
    } finally {
      await browser.close();
    }
  })().then(() => process.exit(0), err => {
    console.error(err.message);
    process.exit(1);
  });
}

// waitFor polls fn (with arg) in the page until it returns a truthy value, which it returns;
// else it fails with what, and the page's text.
async function waitFor(page, what, fn, arg) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout: 20000, polling: 100 })).jsonValue();
  } catch (err) {
    const text = await page.evaluate(() => document.body.innerText).catch(() => "?");
    throw new Error("waiting for " + what + ": " + err.message.split("\n")[0] + "\npage: " + text.slice(0, 600));
  }
}

module.exports = { check, waitFor };
