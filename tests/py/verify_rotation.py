"""A key rotation keeps id_tokens signed before it verifiable: google-auth's
google.oauth2.id_token.verify_token (which fetches /oauth2/v1/certs on every call) accepts the
id_token signed before `refreshd signing-key rotate --now` and the one signed after it, under
another kid. Run by crates/refreshd/tests/it/oidc.rs against a server on the real clock."""

import os

from google.auth import jwt
from google.auth.transport.requests import Request
from google.oauth2 import id_token

base = os.environ["REFRESHD_URL"]
client_id = os.environ["CLIENT_ID"]
tokens = [os.environ["ID_TOKEN_BEFORE"], os.environ["ID_TOKEN_AFTER"]]

claims = [
    id_token.verify_token(
        token,
        Request(),
        audience=client_id,
        certs_url=f"{base}/oauth2/v1/certs",
        clock_skew_in_seconds=0,
    )
    for token in tokens
]
kids = [jwt.decode_header(token)["kid"] for token in tokens]
assert kids[0] != kids[1], kids
assert claims[0]["sub"] == claims[1]["sub"], claims
certs = id_token._fetch_certs(Request(), f"{base}/oauth2/v1/certs")
assert sorted(certs) == sorted(kids), (sorted(certs), kids)

print("verify_rotation: all checks passed")
