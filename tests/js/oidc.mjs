// Verifies refreshd's id_tokens with google-auth-library's own OAuth2Client.verifyIdToken,
// pointed at refreshd's PEM certificates (/oauth2/v1/certs) through its `endpoints` option.
// Run by crates/refreshd/tests/it/oidc.rs against a server on the real clock.
import assert from "node:assert/strict";
import { OAuth2Client } from "google-auth-library";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env("REFRESHD_URL");
const clientId = env("CLIENT_ID");
const client = new OAuth2Client({
  clientId,
  clientSecret: env("CLIENT_SECRET"),
  redirectUri: env("REDIRECT_URI"),
  endpoints: {
    oauth2TokenUrl: `${base}/token`,
    oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs`,
  },
});

// The code exchange answers an id_token, which the library accepts.
const { tokens } = await client.getToken(env("CODE"));
assert.ok(tokens.id_token, "an id_token for scope openid");
const ticket = await client.verifyIdToken({ idToken: tokens.id_token, audience: clientId });
const payload = ticket.getPayload();
assert.equal(payload.iss, "https://accounts.google.com");
assert.equal(payload.aud, clientId);
assert.equal(payload.azp, clientId);
assert.equal(payload.nonce, env("NONCE"));
assert.equal(payload.email, "mona@example.com");
assert.equal(payload.email_verified, true);
assert.equal(payload.name, "Mona");
assert.match(payload.sub, /^[0-9]+$/);
assert.equal(payload.exp - payload.iat, 3600);
assert.equal(ticket.getUserId(), payload.sub);

// A refresh's id_token verifies too, for the same user, without the nonce.
const { tokens: refreshed } = await client.refreshToken(tokens.refresh_token);
const again = await client.verifyIdToken({ idToken: refreshed.id_token, audience: clientId });
assert.equal(again.getPayload().sub, payload.sub);
assert.equal(again.getPayload().nonce, undefined);

// Tampered: another subject under the original signature.
const [header, body, signature] = tokens.id_token.split(".");
const forged = { ...JSON.parse(Buffer.from(body, "base64url")), sub: `${payload.sub}0` };
const tampered = [header, Buffer.from(JSON.stringify(forged)).toString("base64url"), signature].join(".");
assert.notEqual(tampered, tokens.id_token);
await assert.rejects(client.verifyIdToken({ idToken: tampered, audience: clientId }), /Invalid token signature/);

// A signature from a key refreshd does not publish (kid unknown).
const unknownKid = { ...JSON.parse(Buffer.from(header, "base64url")), kid: "not-a-published-kid" };
const foreign = [Buffer.from(JSON.stringify(unknownKid)).toString("base64url"), body, signature].join(".");
assert.notEqual(foreign, tokens.id_token);
await assert.rejects(client.verifyIdToken({ idToken: foreign, audience: clientId }), /No pem found for envelope/);

// For another audience.
await assert.rejects(
  client.verifyIdToken({ idToken: tokens.id_token, audience: "someone-else.apps.googleusercontent.com" }),
  /Wrong recipient/,
);

// Expired: the server runs on the real clock, so the verifier's clock is moved past exp.
// The library reads the time as `new Date()` (and Date.now()), so the global Date is swapped
// for one running `offsetSecs` ahead, for this one call, and restored after it.
const RealDate = Date;
async function verifiedAt(offsetSecs, idToken) {
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + offsetSecs * 1000);
      else super(...args);
    }
    static now() {
      return RealDate.now() + offsetSecs * 1000;
    }
  }
  // A fresh client: no key set cached at another time.
  const verifier = new OAuth2Client({
    clientId,
    endpoints: { oauth2FederatedSignonPemCertsUrl: `${base}/oauth2/v1/certs` },
  });
  globalThis.Date = ShiftedDate;
  try {
    return await verifier.verifyIdToken({ idToken, audience: clientId });
  } finally {
    globalThis.Date = RealDate;
  }
}
// Within the hour (and the library's 300 s skew) it verifies; two hours on it is too late.
assert.equal((await verifiedAt(50 * 60, tokens.id_token)).getPayload().sub, payload.sub);
await assert.rejects(verifiedAt(2 * 3600, tokens.id_token), /Token used too late/);
assert.equal(globalThis.Date, RealDate, "the real clock is back");
// The same token at the true time still verifies.
assert.equal((await verifiedAt(0, tokens.id_token)).getPayload().sub, payload.sub);
await client.verifyIdToken({ idToken: tokens.id_token, audience: clientId });

console.log("oidc: all checks passed");
