// OpenID Connect sign-in as a relying party does it with openid-client (panva's certified
// library): it discovers refreshd from /.well-known/openid-configuration, builds an
// authorization URL with PKCE (S256), a nonce and a state, a person in headless Chromium
// (Debian's, driven by playwright-core) signs in on refreshd's page and approves the consent
// page, and the library exchanges the code that reaches the redirect URI, checks the id_token
// (its signature too, against jwks_uri) and reads /v1/userinfo. Then it fails as it must: a
// wrong PKCE verifier is refused by refreshd's /token (invalid_grant), and a wrong nonce is
// caught by the library. Run by crates/refreshd/tests/it/oidc_browser.rs.
import assert from "node:assert/strict";
import { launchChromium, policyViolations } from "./chromium.mjs";
import * as client from "openid-client";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = env("REFRESHD_URL");
const clientId = env("CLIENT_ID");
const clientSecret = env("CLIENT_SECRET");
const redirectUri = env("REDIRECT_URI");
const login = env("USER_LOGIN");
const password = env("USER_PASSWORD");
const email = env("USER_EMAIL");
const name = env("USER_NAME");
const step = (what) => console.log(`openid_client: ${what}`);
/// A rejection by the library itself (a ClientError), for the reason `pattern` names.
const refusedBy = (pattern) => (error) => {
  assert.ok(error instanceof client.ClientError, `${error.name}: ${error.message}`);
  assert.match(`${error.message}: ${error.cause?.message}`, pattern);
  return true;
};

// --- Discovery: refreshd names itself the issuer it was discovered at (the library insists).
step("discovery");
const discover = (auth) =>
  client.discovery(new URL(issuer), clientId, clientSecret, auth, { execute: [client.allowInsecureRequests] });
const config = await discover(undefined); // client_secret_post, the library's default
client.enableNonRepudiationChecks(config); // the id_token's signature, against jwks_uri
const metadata = config.serverMetadata();
assert.equal(metadata.issuer, issuer);
assert.equal(metadata.authorization_endpoint, `${issuer}/o/oauth2/v2/auth`);
assert.ok(metadata.supportsPKCE("S256"), JSON.stringify(metadata.code_challenge_methods_supported));

// The app's side: the browser's visit to the redirect URI is answered here, never sent out.
const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
const atRedirect = (url) => url.href.startsWith(`${redirectUri}?`);
await context.route(atRedirect, (route) =>
  route.fulfill({ status: 200, contentType: "text/plain", body: "the app got its callback" }),
);
const page = await context.newPage();
// A page that tried to run a script or break its policy would say so on the console.
const violations = policyViolations(page);

/// A fresh authorization: PKCE, nonce and state of its own; the person signs in if asked and
/// approves. The URL the browser ends at (the redirect URI with the code), and the checks.
const authorize = async () => {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid email profile",
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: "S256",
    nonce,
    state,
    prompt: "consent",
  });
  assert.ok(url.href.startsWith(`${issuer}/o/oauth2/v2/auth?`), url.href);
  const response = await page.goto(url.href);
  assert.match(response.headers()["content-security-policy"], /default-src 'none'/);
  const signedIn = (await page.locator("#password").count()) > 0;
  if (signedIn) {
    step("sign in on refreshd's page");
    await page.fill("#username", login);
    await page.fill("#password", password);
    await page.click("button[value=sign_in]");
  }
  await page.locator("button[value=authorize]").waitFor();
  assert.match(await page.locator("h1").textContent(), /Authorize OpenID RP/);
  assert.equal(await page.locator("script").count(), 0, "no scripts on the page");
  await page.click("button[value=authorize]");
  await page.waitForURL(atRedirect);
  return { currentUrl: new URL(page.url()), pkceCodeVerifier, nonce, state, signedIn };
};

// --- The flow as it should go.
step("authorize in Chromium");
const first = await authorize();
assert.ok(first.signedIn, "the person signed in on refreshd's page");
assert.equal(first.currentUrl.searchParams.get("state"), first.state);
assert.ok(first.currentUrl.searchParams.get("code"));
step("authorizationCodeGrant");
const tokens = await client.authorizationCodeGrant(config, first.currentUrl, {
  pkceCodeVerifier: first.pkceCodeVerifier,
  expectedNonce: first.nonce,
  expectedState: first.state,
  idTokenExpected: true,
});
assert.equal(tokens.token_type.toLowerCase(), "bearer");
assert.ok(tokens.access_token && tokens.id_token);
const claims = tokens.claims();
assert.equal(claims.iss, issuer);
assert.equal(claims.aud, clientId);
assert.equal(claims.nonce, first.nonce);
assert.equal(claims.email, email);
assert.equal(claims.email_verified, true);
assert.match(claims.sub, /^\d+$/, "Google's numeric sub");
assert.ok(claims.exp > claims.iat, JSON.stringify(claims));

step("fetchUserInfo");
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
assert.equal(info.sub, claims.sub);
assert.equal(info.email, claims.email);
assert.equal(info.name, name);
if (claims.name !== undefined) assert.equal(claims.name, info.name);
// Another subject is caught by the library.
await assert.rejects(client.fetchUserInfo(config, tokens.access_token, `${claims.sub}0`), refusedBy(/"sub"/));

// --- A wrong PKCE verifier: refreshd's /token refuses the code with invalid_grant.
step("a wrong code_verifier");
const second = await authorize();
await assert.rejects(
  client.authorizationCodeGrant(config, second.currentUrl, {
    pkceCodeVerifier: client.randomPKCECodeVerifier(),
    expectedNonce: second.nonce,
    expectedState: second.state,
    idTokenExpected: true,
  }),
  (error) => {
    assert.ok(error instanceof client.ResponseBodyError, `${error.name}: ${error.message}`);
    assert.equal(error.status, 400);
    assert.equal(error.error, "invalid_grant");
    return true;
  },
);
// Without any verifier, the same: a code issued with a challenge needs one.
const third = await authorize();
await assert.rejects(
  client.authorizationCodeGrant(config, third.currentUrl, { expectedState: third.state, idTokenExpected: true }),
  (error) => {
    assert.ok(error instanceof client.ResponseBodyError, `${error.name}: ${error.message}`);
    assert.equal(error.error, "invalid_grant");
    return true;
  },
);

// --- A wrong nonce, with client_secret_basic this time: refreshd answers (the right verifier),
// the library refuses the id_token.
step("a wrong nonce");
const basic = await discover(client.ClientSecretBasic(clientSecret));
const fourth = await authorize();
await assert.rejects(
  client.authorizationCodeGrant(basic, fourth.currentUrl, {
    pkceCodeVerifier: fourth.pkceCodeVerifier,
    expectedNonce: client.randomNonce(),
    expectedState: fourth.state,
    idTokenExpected: true,
  }),
  refusedBy(/"nonce"/),
);
// And a wrong state never reaches the token endpoint.
const fifth = await authorize();
await assert.rejects(
  client.authorizationCodeGrant(config, fifth.currentUrl, {
    pkceCodeVerifier: fifth.pkceCodeVerifier,
    expectedNonce: fifth.nonce,
    expectedState: client.randomState(),
  }),
  refusedBy(/"state"/),
);
// That code is still good: the right checks get tokens for the same person.
const again = await client.authorizationCodeGrant(basic, fifth.currentUrl, {
  pkceCodeVerifier: fifth.pkceCodeVerifier,
  expectedNonce: fifth.nonce,
  expectedState: fifth.state,
  idTokenExpected: true,
});
assert.equal(again.claims().sub, claims.sub);

assert.deepEqual(violations, [], "no page broke its content security policy");
await browser.close();
console.log("openid_client: all checks passed");
