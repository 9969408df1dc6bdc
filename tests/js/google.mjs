// Drives refreshd's Google dialect with Google's own google-auth-library (OAuth2Client),
// pointed at refreshd through its `endpoints` option. Run by
// crates/refreshd/tests/it/google_dialect.rs.
import assert from "node:assert/strict";
import { OAuth2Client } from "google-auth-library";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env("REFRESHD_URL");
const client = new OAuth2Client({
  clientId: env("CLIENT_ID"),
  clientSecret: env("CLIENT_SECRET"),
  redirectUri: env("REDIRECT_URI"),
  endpoints: {
    oauth2TokenUrl: `${base}/token`,
    oauth2RevokeUrl: `${base}/revoke`,
    tokenInfoUrl: `${base}/tokeninfo`,
  },
});

// The authorization-code exchange.
const { tokens } = await client.getToken(env("CODE"));
assert.match(tokens.access_token, /^ya29\./);
assert.match(tokens.refresh_token, /^1\/\//);
assert.equal(tokens.token_type, "Bearer");
assert.equal(tokens.scope, "openid email");
const minutes = (tokens.expiry_date - Date.now()) / 60_000;
assert.ok(minutes > 59 && minutes <= 60, `expires in about an hour, got ${minutes}`);

// A refresh through the library: a new access token, the same refresh token.
client.setCredentials({ refresh_token: tokens.refresh_token });
const { token: refreshed } = await client.getAccessToken();
assert.match(refreshed, /^ya29\./);
assert.notEqual(refreshed, tokens.access_token);
assert.equal(client.credentials.refresh_token, tokens.refresh_token, "Google's refresh tokens do not rotate");

// Token info on the refreshed token.
const info = await client.getTokenInfo(refreshed);
assert.equal(info.aud, env("CLIENT_ID"));
assert.deepEqual(info.scopes, ["openid", "email"]);
assert.ok(info.expiry_date > Date.now());

// The refresh token keeps working.
client.setCredentials({ refresh_token: tokens.refresh_token });
const { token: again } = await client.getAccessToken();
assert.notEqual(again, refreshed);

// Revoking the refresh token ends the grant.
await client.revokeToken(tokens.refresh_token);
client.setCredentials({ refresh_token: tokens.refresh_token });
await assert.rejects(client.getAccessToken(), (error) => {
  assert.match(String(error.message), /invalid_grant/);
  return true;
});
await assert.rejects(client.getTokenInfo(again), (error) => {
  assert.equal(error.response?.status, 400, String(error));
  assert.equal(error.response?.data?.error, "invalid_token");
  return true;
});

console.log("google: all checks passed");
