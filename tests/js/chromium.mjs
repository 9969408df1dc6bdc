// Debian's headless Chromium, driven by playwright-core, as every browser test starts it: a
// fresh, empty profile per launch (playwright makes a temporary user-data-dir), nothing
// fetched from the network but the pages under test.
import { chromium } from "playwright-core";

export const launchChromium = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });

// The console messages of `page` that say it tried to run a script or broke its content
// security policy: the list fills as the page is used.
export const policyViolations = (page) => {
  const violations = [];
  page.on("console", (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  return violations;
};
