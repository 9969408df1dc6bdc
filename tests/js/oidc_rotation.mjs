// A key rotation keeps id_tokens signed before it verifiable: google-auth-library's
// verifyIdToken, with a key set fetched after the rotation from /oauth2/v1/certs, accepts the
// id_token signed before `refreshd signing-key rotate --now` and the one signed after it, under
// another kid. Run by crates/refreshd/tests/it/oidc.rs against a server on the real clock.
import assert from "node:assert/strict";
import { OAuth2Client } from "google-auth-library";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env("REFRESHD_URL");
const clientId = env("CLIENT_ID");
// A new client holds no cached key set: its first verification fetches the certs.
const client = new OAuth2Client({
  clientId,
  endpoints: { oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs` },
});

const before = await client.verifyIdToken({ idToken: env("ID_TOKEN_BEFORE"), audience: clientId });
const after = await client.verifyIdToken({ idToken: env("ID_TOKEN_AFTER"), audience: clientId });
const kids = [before.getEnvelope().kid, after.getEnvelope().kid];
assert.notEqual(kids[0], kids[1], "the rotation's token is signed under a new kid");
assert.equal(before.getPayload().sub, after.getPayload().sub);
const { certs } = await client.getFederatedSignonCertsAsync();
assert.deepEqual(Object.keys(certs).sort(), [...kids].sort(), "both keys published");

console.log("oidc_rotation: all checks passed");
