"""Verifies refreshd's id_tokens with google-auth's google.oauth2.id_token.verify_token, pointed
at refreshd's PEM certificates (/oauth2/v1/certs). Run by crates/refreshd/tests/it/oidc.rs
against a server on the real clock; prints a marker when every check passed."""

import base64
import datetime
import json
import os
from unittest import mock

import google.auth._helpers
import requests
from google.auth import exceptions
from google.auth.transport.requests import Request
from google.oauth2 import id_token

base = os.environ["REFRESHD_URL"]
client_id = os.environ["CLIENT_ID"]
certs_url = f"{base}/oauth2/v1/certs"

answer = requests.post(
    f"{base}/token",
    data={
        "grant_type": "authorization_code",
        "code": os.environ["CODE"],
        "redirect_uri": os.environ["REDIRECT_URI"],
        "client_id": client_id,
        "client_secret": os.environ["CLIENT_SECRET"],
    },
    timeout=10,
)
answer.raise_for_status()
token = answer.json()["id_token"]


def verify(tok, audience=client_id):
    return id_token.verify_token(
        tok, Request(), audience=audience, certs_url=certs_url, clock_skew_in_seconds=0
    )


claims = verify(token)
# verify_token does not check the issuer: check it here, as apps must.
assert claims["iss"] == "https://accounts.google.com", claims
assert claims["aud"] == client_id and claims["azp"] == client_id, claims
assert claims["nonce"] == os.environ["NONCE"], claims
assert claims["email"] == "mona@example.com" and claims["email_verified"] is True, claims
assert claims["sub"].isdigit(), claims


def refused(tok, audience=client_id, expect=""):
    try:
        verify(tok, audience)
    except (ValueError, exceptions.GoogleAuthError) as error:
        assert expect in str(error), error
        return
    raise AssertionError("accepted")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


header, body, signature = token.split(".")
payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
payload["sub"] = payload["sub"] + "0"
tampered = ".".join([header, b64(json.dumps(payload).encode()), signature])
assert tampered != token
refused(tampered, expect="signature")
refused(token, audience="someone-else.apps.googleusercontent.com", expect="audience")

# Expired: the server runs on the real clock, so the verifier's clock is moved past exp.
# google.auth.jwt reads the time through google.auth._helpers.utcnow, patched for one call.
real_utcnow = google.auth._helpers.utcnow


def at(offset_secs):
    shifted = real_utcnow() + datetime.timedelta(seconds=offset_secs)
    return mock.patch("google.auth._helpers.utcnow", return_value=shifted)


with at(50 * 60):
    assert verify(token)["sub"] == claims["sub"]  # within the hour, no skew allowed
with at(2 * 3600):
    refused(token, expect="Token expired")
assert google.auth._helpers.utcnow is real_utcnow
assert verify(token)["sub"] == claims["sub"]  # the same token, at the true time

print("verify_id_token: all checks passed")
