"""Verifies Standard Webhooks asymmetric signatures (`v1a,`) with PyPI `cryptography`'s Ed25519,
as a receiver holding only the endpoint's public key (`whpk_...`) would.

    python3 tests/ed25519_verify.py < cases.json

Input: {"cases": [{"id": ..., "timestamp": ..., "body_b64": ..., "signature": <the
webhook-signature header>, "keys": ["whpk_...", ...]}, ...]}.
Output (stdout): one JSON list per case, in order: for each key, how many `v1a,` signatures of
the header it verifies over "id.timestamp.body" (so a test can tell which keys signed).
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verifies(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
        return True
    except InvalidSignature:
        return False


results = []
for case in json.load(sys.stdin)["cases"]:
    body = base64.b64decode(case["body_b64"])
    signed = f"{case['id']}.{case['timestamp']}.".encode() + body
    signatures = [
        base64.b64decode(part[len("v1a,"):])
        for part in case["signature"].split(" ")
        if part.startswith("v1a,")
    ]
    keys = [
        Ed25519PublicKey.from_public_bytes(base64.b64decode(k[len("whpk_"):]))
        for k in case["keys"]
    ]
    results.append([sum(verifies(k, s, signed) for s in signatures) for k in keys])
print(json.dumps(results))
