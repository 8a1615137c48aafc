"""A webhook receiver that verifies every delivery with the official Standard Webhooks library
(PyPI `standardwebhooks`), as a user's receiver would.

    python3 tests/standard_webhooks_receiver.py SECRET OUT_FILE

SECRET is a `whsec_...` secret, or `raw:<text>` for a raw secret (whose bytes are the key).
Prints the port it listens on (127.0.0.1), then appends one JSON line per request to OUT_FILE:
{"verified": bool, "id": ..., "type": ..., "error": ...}; answers 204 if verified, else 401.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret, out_path = sys.argv[1], sys.argv[2]
webhook = Webhook(secret[4:].encode() if secret.startswith("raw:") else secret)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        record = {"id": self.headers.get("webhook-id")}
        try:
            payload = webhook.verify(body, dict(self.headers.items()))
            record.update(verified=True, type=payload.get("type"))
            status = 204
        except WebhookVerificationError as e:
            record.update(verified=False, error=str(e))
            status = 401
        with open(out_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
