"""Seed 000's Python sample, pointed at refreshd's broker, with the body its TypeScript client
sends. Prints the JSON answer. Run by crates/refreshd/tests/it/broker.rs."""
import json
import os
import sys

import requests

headers = {
    'Content-Type': 'application/json',
    'Accept': 'application/json',
    'Authorization': 'Bearer ' + os.environ['API_KEY'],
}
url = os.environ['BROKER_URL'] + sys.argv[1]

r = requests.post(url, headers=headers, json={'refresh_token': os.environ['REFRESH_TOKEN']})
print(json.dumps({'status': r.status_code, 'body': r.json()}))

# The sample exactly as printed in the seed sends no body: refreshd answers a clear 400.
r = requests.post(url, headers=headers)
print(json.dumps({'status': r.status_code, 'body': r.json()}))
