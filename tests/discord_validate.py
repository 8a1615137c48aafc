#!/usr/bin/env python3
"""Loads Discord messages hookd rendered with discord.py (PyPI) and checks Discord's limits.

tests/it/formats.rs writes one message per line to a file and runs this on it. Every embed must
load with discord.Embed.from_dict and keep Discord's limits as discord.py counts them (len(embed):
title, description, fields, footer, author), content at most 2,000 characters, at most 10
embeds, 6,000 characters over all of them, and no mention allowed. Prints {"ok": true, ...}.
"""
import json
import sys

import discord

n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        m = json.loads(line)
        content = m["content"]
        assert isinstance(content, str) and 0 < len(content) <= 2000, len(content)
        assert m["allowed_mentions"] == {"parse": []}, m["allowed_mentions"]
        mentions = discord.AllowedMentions.none().to_dict()
        assert mentions["parse"] == m["allowed_mentions"]["parse"], mentions
        embeds = [discord.Embed.from_dict(e) for e in m["embeds"]]
        assert len(embeds) <= 10, len(embeds)
        total = 0
        for e in embeds:
            assert e.title is None or len(e.title) <= 256, len(e.title)
            assert e.description is None or len(e.description) <= 4096, len(e.description)
            assert len(e.fields) <= 25
            total += len(e)
            # What loads is what was sent: nothing dropped by the model.
            assert e.to_dict().get("description") == m["embeds"][embeds.index(e)].get("description")
        assert total <= 6000, total
        for text in [content] + [e.description or "" for e in embeds]:
            assert "@everyone" not in text and "@here" not in text, text
        n += 1
print(json.dumps({"ok": True, "messages": n}))
