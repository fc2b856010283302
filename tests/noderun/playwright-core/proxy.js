// Playwright's `proxy` launch option, as in the README's recipe: Chromium's requests go through the
// inspector's scoped proxy, its certificate accepted by its pin (no trust store touched).
//
//   node proxy.js CHROMIUM PROXY_URL SPKI_PIN PAGE_URL
// Prints "beacon <status>" once the page's beacon to telemetry.refine.dev was answered.
"use strict";

const { chromium } = require("playwright-core");

const [executablePath, proxy, pin, pageUrl] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    proxy: { server: proxy },
    args: [`--ignore-certificate-errors-spki-list=${pin}`],
  });
  try {
    const page = await browser.newPage();
    const beacon = page.waitForResponse((response) => response.url().startsWith("https://telemetry.refine.dev/"));
    await page.goto(pageUrl);
    console.log(`beacon ${(await beacon).status()}`);
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(`proxy.js: ${error.message}`);
  process.exit(1);
});
