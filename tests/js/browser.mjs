// refreshd's pages in headless Chromium (Debian's, driven by playwright-core): an owner
// registers apps in the settings pages, a user signs in and authorizes them through the
// authorize URLs GitHub's and Google's own libraries build, and the codes that reach the app's
// callback are exchanged by those libraries. Run by crates/refreshd/tests/it/browser.rs.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, policyViolations } from "./chromium.mjs";
import { request as octokitRequest } from "@octokit/request";
import { exchangeWebFlowCode, getWebFlowAuthorizationUrl, refreshToken } from "@octokit/oauth-methods";
import { OAuth2Client } from "google-auth-library";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("REFRESHD_URL");
const login = env("USER_LOGIN");
const password = env("USER_PASSWORD");
const screenshots = env("SCREENSHOT_DIR");
const step = (what) => console.log(`browser: ${what}`);

// The app's side: a callback server that records every request it gets.
const received = [];
const callback = createServer((req, res) => {
  const url = new URL(req.url, "http://callback.invalid");
  if (url.pathname === "/callback") received.push(url); // not the browser's /favicon.ico
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("the app got its callback");
});
await new Promise((resolve) => callback.listen(0, "127.0.0.1", resolve));
const callbackUrl = `http://127.0.0.1:${callback.address().port}/callback`;
const lastCallback = () => received[received.length - 1];

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
const page = await context.newPage();
// A page that tried to run a script or break its policy would say so on the console.
const violations = policyViolations(page);

const github = octokitRequest.defaults({ baseUrl: `${base}/api/v3` });
const userStatus = async (token) =>
  (await fetch(`${base}/user`, { headers: { authorization: `Bearer ${token}` } })).status;

/// Every page is served with the strict policy and without a single script.
const checkPage = async (response) => {
  const headers = response.headers();
  assert.match(headers["content-security-policy"], /default-src 'none'/);
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline|script-src/);
  assert.equal(await page.locator("script").count(), 0, "no scripts on the page");
};

const shoot = async (name) => {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
};

// --- Sign-in: a wrong password is refused, the right one comes back to the page asked for.
step("sign in");
let response = await page.goto(`${base}/settings/developers`);
assert.match(page.url(), /\/login\?return_to=%2Fsettings%2Fdevelopers$/);
await checkPage(response);
await page.fill("#username", login);
await page.fill("#password", "not the password");
await page.click("button[value=sign_in]");
await page.locator("p.error").waitFor();
assert.equal(await page.locator("p.error").textContent(), "Incorrect username or password.");
await page.fill("#password", password);
await page.click("button[value=sign_in]");
await page.waitForURL(`${base}/settings/developers`);
const cookies = await context.cookies();
const session = cookies.find((c) => c.name === "refreshd_session");
assert.ok(session && session.httpOnly && session.sameSite === "Lax", "session cookie is HttpOnly, SameSite=Lax");

// --- The owner registers a GitHub-dialect app; its secret is shown once.
step("register a GitHub app");
const register = async (name, dialect) => {
  await page.goto(`${base}/settings/developers`);
  await page.fill("#name", name);
  await page.fill("#redirect_uris", callbackUrl);
  await page.selectOption("#dialect", dialect);
  await page.click("text=Register application");
  await page.locator("#client-secret").waitFor();
  const clientId = (await page.locator("#client-id").textContent()).trim();
  const app = {
    clientId,
    clientSecret: (await page.locator("#client-secret").textContent()).trim(),
    settings: `${base}/settings/applications/${clientId}`,
  };
    await page.goto(app.settings);
  assert.equal(page.url(), app.settings, "the owner stays on the app's page");
  assert.equal(await page.locator("#client-id").textContent(), clientId);
  assert.equal(await page.locator("#client-secret").count(), 0, "the secret is shown only once");
  return app;
};
const app = await register("Octo CI", "github");
const githubApp = { clientType: "github-app", clientId: app.clientId, clientSecret: app.clientSecret, request: github };
assert.match(app.clientId, /^Iv23/);

// --- Authorize through the URL octokit builds; the consent page, then the callback's code.
step("authorize the GitHub app");
const authorizeUrl = (state, scopes) =>
  getWebFlowAuthorizationUrl({ clientType: "oauth-app", clientId: app.clientId, redirectUrl: callbackUrl, scopes, state, request: github }).url;
response = await page.goto(authorizeUrl("state-1", ["repo", "user"]));
assert.ok(response.url().startsWith(`${base}/login/oauth/authorize?`), response.url());
await checkPage(response);
assert.equal(response.headers()["x-frame-options"], "DENY");
assert.match(await page.locator("h1").textContent(), /Authorize Octo CI/);
assert.deepEqual(await page.locator("ul.scopes code").allTextContents(), ["repo", "user"]);
await shoot("consent");
await page.click("button[value=authorize]");
await page.waitForURL(/\/callback\?/);
assert.equal(lastCallback().searchParams.get("state"), "state-1");
const code = lastCallback().searchParams.get("code");
assert.match(code, /^[0-9a-f]{20}$/);

// The code is exchanged by octokit at the token endpoint; the token works on GET /user.
const first = (await exchangeWebFlowCode({ ...githubApp, code })).authentication;
assert.match(first.token, /^ghu_/);
assert.match(first.refreshToken, /^ghr_/, "expiring tokens come with a refresh token");
assert.ok(first.expiresAt);
assert.equal(await userStatus(first.token), 200);
const me = await (await fetch(`${base}/user`, { headers: { authorization: `Bearer ${first.token}` } })).json();
assert.equal(me.login, login);
const rotated = (await refreshToken({ ...githubApp, refreshToken: first.refreshToken })).authentication;
assert.equal(await userStatus(rotated.token), 200);

// The owner sees the live token (its last eight) on the app's page.
await page.goto(app.settings);
assert.match(await page.locator("table").textContent(), new RegExp(rotated.token.slice(-8)));
await shoot("settings");

// --- Cancel sends the app access_denied, with its state.
step("cancel");
const before = received.length;
await page.goto(authorizeUrl("state-2", ["gist"]));
await page.click("button[value=cancel]");
await page.waitForURL(/\/callback\?/);
assert.equal(received.length, before + 1);
assert.equal(lastCallback().searchParams.get("error"), "access_denied");
assert.equal(lastCallback().searchParams.get("state"), "state-2");
assert.equal(lastCallback().searchParams.get("code"), null);

// --- A redirect URI the app did not register: an error page, and no redirect at all.
step("mismatched redirect URI");
const count = received.length;
response = await page.goto(
  `${base}/login/oauth/authorize?client_id=${app.clientId}&redirect_uri=${encodeURIComponent("http://127.0.0.1:9/elsewhere")}&state=s`,
);
assert.equal(response.status(), 400);
assert.ok(page.url().startsWith(`${base}/login/oauth/authorize`), "the browser stayed on refreshd");
assert.match(await page.locator("p.error").textContent(), /not one registered/);
const unknown = await page.goto(`${base}/login/oauth/authorize?client_id=Iv23nosuchclient0000&redirect_uri=${encodeURIComponent(callbackUrl)}`);
assert.equal(unknown.status(), 400);
assert.ok(page.url().startsWith(base));
assert.equal(received.length, count, "the callback was never called");

// --- The owner opts out of expiring tokens; the next grant (consent already given, so no
// page) gets a token that never expires and no refresh token.
step("opt out of token expiration");
await page.goto(app.settings);
await page.click("#expiration button[value=off]");
await page.locator("#expiration", { hasText: "Opted out" }).waitFor();
await page.goto(authorizeUrl("state-3", ["repo"]));
await page.waitForURL(/\/callback\?/);
assert.equal(lastCallback().searchParams.get("state"), "state-3");
const forever = (await exchangeWebFlowCode({ ...githubApp, code: lastCallback().searchParams.get("code") })).authentication;
assert.match(forever.token, /^ghu_/);
assert.equal(forever.refreshToken, undefined, "no refresh token once opted out");
assert.equal(forever.expiresAt, undefined, "no expiry once opted out");
assert.equal(await userStatus(forever.token), 200);

// --- The user revokes the app: every token stops, and authorizing asks again.
step("revoke the app");
await page.goto(`${base}/settings/connections/applications`);
const card = page.locator("section.app", { hasText: "Octo CI" });
await card.locator("button", { hasText: "Revoke access" }).click();
await page.waitForURL(`${base}/settings/connections/applications`);
assert.equal(await page.locator("section.app", { hasText: "Octo CI" }).count(), 0);
assert.equal(await userStatus(rotated.token), 401);
assert.equal(await userStatus(forever.token), 401);
await assert.rejects(refreshToken({ ...githubApp, refreshToken: rotated.refreshToken }), /bad_refresh_token/);
await page.goto(authorizeUrl("state-4", ["repo"]));
assert.match(await page.locator("h1").textContent(), /Authorize Octo CI/, "consent is asked again");

// --- A Google-dialect app, through the URL google-auth-library builds, ends in a working
// refresh token.
step("authorize a Google app");
const googleApp = await register("Octo Mail", "google");
const google = new OAuth2Client({
  clientId: googleApp.clientId,
  clientSecret: googleApp.clientSecret,
  redirectUri: callbackUrl,
  endpoints: {
    oauth2AuthBaseUrl: `${base}/o/oauth2/v2/auth`,
    oauth2TokenUrl: `${base}/token`,
    oauth2RevokeUrl: `${base}/revoke`,
    tokenInfoUrl: `${base}/tokeninfo`,
  },
});
const googleUrl = google.generateAuthUrl({ access_type: "offline", scope: ["openid", "email"], state: "g-1", prompt: "consent" });
assert.ok(googleUrl.startsWith(`${base}/o/oauth2/v2/auth?`), googleUrl);
response = await page.goto(googleUrl);
await checkPage(response);
assert.equal(response.headers()["x-frame-options"], "DENY");
assert.match(await page.locator("h1").textContent(), /Authorize Octo Mail/);
await page.click("button[value=authorize]");
await page.waitForURL(/\/callback\?/);
assert.equal(lastCallback().searchParams.get("state"), "g-1");
assert.equal(lastCallback().searchParams.get("scope"), "openid email");
const { tokens } = await google.getToken(lastCallback().searchParams.get("code"));
assert.match(tokens.access_token, /^ya29\./);
assert.match(tokens.refresh_token, /^1\/\//);
google.setCredentials({ refresh_token: tokens.refresh_token });
const { token: fresh } = await google.getAccessToken();
assert.match(fresh, /^ya29\./);
assert.notEqual(fresh, tokens.access_token);
const info = await google.getTokenInfo(fresh);
assert.deepEqual(info.scopes, ["openid", "email"]);

// The owner revokes that grant from the app's page: its tokens stop.
step("owner revokes a token");
await page.goto(googleApp.settings);
const row = page.locator("tr", { hasText: fresh.slice(-8) });
await row.locator("button", { hasText: "Revoke" }).click();
await page.waitForURL(googleApp.settings);
assert.equal(await page.locator("tr", { hasText: fresh.slice(-8) }).count(), 0);
await assert.rejects(google.getTokenInfo(fresh), (error) => {
  assert.equal(error.response?.status, 400, String(error));
  assert.equal(error.response?.data?.error, "invalid_token");
  return true;
});
await assert.rejects(google.refreshToken(tokens.refresh_token), /invalid_grant/);

// --- Phone width: the consent page fits without sideways scrolling.
step("phone width");
await page.setViewportSize({ width: 360, height: 740 });
await page.goto(authorizeUrl("state-5", ["repo"]));
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(overflow <= 0, `the consent page scrolls sideways by ${overflow}px`);
await shoot("consent-phone");
await page.goto(app.settings);
const settingsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(settingsOverflow <= 0, `the settings page scrolls sideways by ${settingsOverflow}px`);

assert.deepEqual(violations, [], "no page broke its Content-Security-Policy");
await browser.close();
callback.close();
console.log("browser: all checks passed");
