// Drives refreshd with GitHub's own @octokit/oauth-methods, pointed at it as at GitHub
// Enterprise Server (REST under /api/v3). Run by crates/refreshd/tests/it/real_clients.rs.
import assert from "node:assert/strict";
import { request as octokitRequest } from "@octokit/request";
import {
  checkToken,
  deleteAuthorization,
  deleteToken,
  exchangeWebFlowCode,
  refreshToken,
  resetToken,
} from "@octokit/oauth-methods";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const request = octokitRequest.defaults({ baseUrl: `${env("REFRESHD_URL")}/api/v3` });
const app = { clientType: "github-app", clientId: env("CLIENT_ID"), clientSecret: env("CLIENT_SECRET"), request };

const expectStatus = async (promise, status, pattern) => {
  await assert.rejects(promise, (error) => {
    assert.equal(error.status, status, `expected ${status}, got ${error.status}: ${error.message}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
};

// The web flow's code exchange.
const exchanged = await exchangeWebFlowCode({ ...app, code: env("CODE") });
const first = exchanged.authentication;
assert.match(first.token, /^ghu_[0-9A-Za-z]{36}$/);
assert.match(first.refreshToken, /^ghr_[0-9A-Za-z]{76}$/);
const hours = (Date.parse(first.expiresAt) - Date.now()) / 3_600_000;
assert.ok(hours > 7.9 && hours <= 8.01, `expiresAt is 8 hours ahead, got ${hours}`);

// refreshToken rotates the pair.
const refreshed = (await refreshToken({ ...app, refreshToken: first.refreshToken })).authentication;
assert.notEqual(refreshed.token, first.token);
assert.notEqual(refreshed.refreshToken, first.refreshToken);
await expectStatus(checkToken({ ...app, token: first.token }), 404);
await expectStatus(refreshToken({ ...app, refreshToken: "ghr_" + "x".repeat(76) }), 400, /bad_refresh_token/);

// checkToken sees the authorization, with its expiry.
const checked = await checkToken({ ...app, token: refreshed.token });
assert.equal(checked.status, 200);
assert.equal(checked.data.user.login, "octocat");
assert.equal(checked.data.app.client_id, app.clientId);
assert.ok(checked.authentication.expiresAt, "github-app tokens report expiresAt");

// resetToken replaces the token at once.
const reset = await resetToken({ ...app, token: refreshed.token });
assert.notEqual(reset.authentication.token, refreshed.token);
await expectStatus(checkToken({ ...app, token: refreshed.token }), 404);
assert.equal((await checkToken({ ...app, token: reset.authentication.token })).status, 200);

// deleteToken revokes one token.
assert.equal((await deleteToken({ ...app, token: reset.authentication.token })).status, 204);
await expectStatus(checkToken({ ...app, token: reset.authentication.token }), 404);

// deleteAuthorization revokes the whole grant: the second family too.
const other = env("OTHER_ACCESS_TOKEN");
assert.equal((await checkToken({ ...app, token: other })).status, 200);
assert.equal((await deleteAuthorization({ ...app, token: other })).status, 204);
await expectStatus(checkToken({ ...app, token: other }), 404);

// Wrong client credentials are GitHub's 401.
await expectStatus(checkToken({ ...app, clientSecret: "wrong", token: other }), 401, /Bad credentials/);

console.log("octokit: all checks passed");
