// GitHub's device flow as a command-line tool meets it: @octokit/auth-oauth-device asks refreshd
// for a code and polls, while a person in headless Chromium (Debian's, driven by
// playwright-core) enters that code on /login/device, signs in and authorizes, or cancels.
// Run by crates/refreshd/tests/it/device_browser.rs.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, policyViolations } from "./chromium.mjs";
import { request as octokitRequest } from "@octokit/request";
import { createOAuthDeviceAuth } from "@octokit/auth-oauth-device";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("REFRESHD_URL");
const clientId = env("CLIENT_ID");
const login = env("USER_LOGIN");
const password = env("USER_PASSWORD");
const screenshots = env("SCREENSHOT_DIR");
const step = (what) => console.log(`device: ${what}`);

// Every answer refreshd gives the poller, as JSON bodies in order.
const polls = [];
const loggingFetch = async (url, init) => {
  const response = await fetch(url, init);
  if (String(url).endsWith("/login/oauth/access_token")) {
    polls.push(await response.clone().json());
  }
  return response;
};
const github = octokitRequest.defaults({ baseUrl: `${base}/api/v3`, request: { fetch: loggingFetch } });
const errors = () => polls.filter((p) => p.error).map((p) => p.error);
const until = async (condition, what) => {
  for (let i = 0; i < 600 && !condition(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(condition(), `timed out waiting for ${what}: ${JSON.stringify(polls)}`);
};

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
const page = await context.newPage();
// A page that tried to run a script or break its policy would say so on the console.
const violations = policyViolations(page);
const checkPage = async (response) => {
  const headers = response.headers();
  assert.match(headers["content-security-policy"], /default-src 'none'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline|script-src/);
  assert.equal(await page.locator("script").count(), 0, "no scripts on the page");
};

/// The person's side: opens the verification URI, types the code in lower case without its
/// dash, signs in when asked, checks the scopes shown and clicks `action` ("authorize" or
/// "cancel") on the approval page.
const person = async (verification, action, { shot, scope = /repo/ } = {}) => {
  const typed = verification.user_code.replace("-", "").toLowerCase();
  const response = await page.goto(verification.verification_uri);
  await checkPage(response);
  await page.fill("#user_code", typed);
  await page.click("button[value=continue]");
  if (await page.locator("#password").count()) {
    step("sign in on the device page");
    await page.fill("#username", login);
    await page.fill("#password", password);
    await page.click("button[value=sign_in]");
  }
  await page.locator(`button[value=${action}]`).waitFor();
  assert.equal(await page.locator("h1").textContent(), "Authorize Octo CLI");
  assert.match(await page.locator("body").textContent(), scope, "the page shows the scopes");
  if (shot) {
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, `${shot}.png`), fullPage: true });
  }
  await page.click(`button[value=${action}]`);
  await page.locator("h1").filter({ hasText: action === "authorize" ? "Device authorized" : "Authorization cancelled" }).waitFor();
};

// --- Authorize: octokit polls too fast (interval 1 s), refreshd slows it down; the person
// approves only once the poller has met slow_down, and its next poll gets the token.
step("octokit starts the device flow");
let approved;
let shown;
const auth = createOAuthDeviceAuth({
  clientType: "oauth-app",
  clientId,
  scopes: ["repo"],
  request: github,
  onVerification(verification) {
    shown = { ...verification };
    verification.interval = 1; // poll faster than refreshd allows
    approved = until(() => errors().includes("slow_down"), "slow_down").then(() =>
      person(verification, "authorize", { shot: "device" }),
    );
  },
});
const authentication = await auth({ type: "oauth" });
await approved;
assert.equal(shown.verification_uri, `${base}/login/device`);
assert.match(shown.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
assert.match(shown.device_code, /^[0-9a-f]{40}$/);
assert.equal(shown.expires_in, 899);
assert.equal(shown.interval, 5);
step(`polls: ${JSON.stringify(errors())}`);
assert.deepEqual(polls[0], {
  error: "authorization_pending",
  error_description: "The authorization request is still pending.",
  error_uri: "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow",
});
assert.equal(polls[1].error, "slow_down");
assert.equal(polls[1].interval, 10, "slow_down returns the interval raised by 5");
const last = polls[polls.length - 1];
assert.equal(last.error, undefined, `the last poll got the token: ${JSON.stringify(last)}`);
for (const p of polls.slice(2, -1)) assert.equal(p.error, "slow_down", JSON.stringify(polls));
assert.match(authentication.token, /^gh[ou]_[0-9A-Za-z]{36}$/);
assert.equal(authentication.tokenType, "oauth");
assert.equal(authentication.clientType, "oauth-app");
assert.deepEqual(authentication.scopes, ["repo"]);

step("the token works on /api/v3/user");
const user = await octokitRequest("GET /user", {
  baseUrl: `${base}/api/v3`,
  headers: { authorization: `token ${authentication.token}` },
});
assert.equal(user.data.login, login);
assert.equal(user.headers["x-oauth-scopes"], "repo");

// The code is spent: polling it again gets an error, not a second token.
const again = await github("POST /login/oauth/access_token", {
  baseUrl: base,
  headers: { accept: "application/json" },
  client_id: clientId,
  device_code: shown.device_code,
  grant_type: "urn:ietf:params:oauth:grant-type:device_code",
});
step(`a spent code polled again: ${again.data.error}`);
assert.equal(again.data.error, "incorrect_device_code", JSON.stringify(again.data));
assert.ok(!again.data.access_token, JSON.stringify(again.data));

// --- Cancel: the person, still signed in, cancels; octokit's auth rejects with access_denied.
step("a person cancels");
polls.length = 0;
let cancelled;
const denied = createOAuthDeviceAuth({
  clientType: "oauth-app",
  clientId,
  scopes: ["repo"],
  request: github,
  onVerification(verification) {
    cancelled = person(verification, "cancel");
  },
});
await assert.rejects(denied({ type: "oauth" }), (error) => {
  assert.equal(error.response?.data?.error, "access_denied", error.message);
  return true;
});
await cancelled;
assert.equal(errors().at(-1), "access_denied");
assert.ok(errors().slice(0, -1).every((e) => e === "authorization_pending"), JSON.stringify(polls));

// --- A GitHub App with expiring tokens: octokit reads the refresh token and the expiry.
step("a GitHub App's device flow");
polls.length = 0;
let approvedApp;
const appAuth = createOAuthDeviceAuth({
  clientType: "github-app",
  clientId,
  request: github,
  onVerification(verification) {
    approvedApp = person(verification, "authorize", { scope: /asks for no scopes/ });
  },
});
const appAuthentication = await appAuth({ type: "oauth" });
await approvedApp;
assert.ok(errors().every((e) => e === "authorization_pending"), JSON.stringify(polls));
assert.match(appAuthentication.token, /^ghu_[0-9A-Za-z]{36}$/);
assert.match(appAuthentication.refreshToken, /^ghr_[0-9A-Za-z]{76}$/);
const hours = (Date.parse(appAuthentication.expiresAt) - Date.now()) / 3_600_000;
assert.ok(hours > 7.9 && hours <= 8.01, `expiresAt is 8 hours ahead, got ${hours}`);
const appUser = await octokitRequest("GET /user", {
  baseUrl: `${base}/api/v3`,
  headers: { authorization: `token ${appAuthentication.token}` },
});
assert.equal(appUser.data.login, login);

assert.deepEqual(violations, [], "no page broke its content security policy");
await browser.close();
console.log("device: all checks passed");
