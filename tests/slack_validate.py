#!/usr/bin/env python3
"""Validates Slack messages hookd rendered with Slack's own Python SDK (PyPI slack-sdk).

tests/it/formats.rs writes one message per line to a file and runs this on it. Each message must
have a `text` fallback and `blocks` that slack_sdk's Block Kit models parse (no unknown block or
element) and validate: the models raise on every Block Kit limit (header 150 characters, section
text 3,000, context elements 10, ...). Prints {"ok": true, "messages": N} on success.
"""
import json
import sys

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50

n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        m = json.loads(line)
        assert isinstance(m.get("text"), str) and m["text"], "no text fallback"
        raw = m["blocks"]
        assert 0 < len(raw) <= MAX_BLOCKS, f"{len(raw)} blocks"
        blocks = Block.parse_all(raw)
        assert len(blocks) == len(raw) and all(b is not None for b in blocks), "a block slack_sdk does not know"
        for b in blocks:
            b.validate_json()
            for element in getattr(b, "elements", None) or []:
                element.validate_json()
        assert len(json.dumps(m, ensure_ascii=False)) < 40_000
        n += 1
print(json.dumps({"ok": True, "messages": n}))
