#!/usr/bin/env python3
"""Parses, validates and renders Teams cards hookd rendered with Microsoft's adaptivecards
library (npm) in Debian's chromium, driven by Playwright (it downloads no browser).

tests/it/formats.rs writes one message per line and runs:
    teams_validate.py ADAPTIVECARDS_JS MESSAGES_FILE SCREENSHOT_PNG
Every card must parse and validate without an event, and render. The first two cards (a firing
and a resolved group) are shot side by side into SCREENSHOT_PNG. Prints {"ok": true, ...}.
"""
import json
import sys

from playwright.sync_api import sync_playwright

lib, messages, shot = sys.argv[1:4]
with open(messages, encoding="utf-8") as f:
    cards = [json.loads(line) for line in f]

CHECK = """(messages) => messages.map((m, i) => {
    const content = m.attachments[0].content;
    const card = new AdaptiveCards.AdaptiveCard();
    const context = new AdaptiveCards.SerializationContext();
    card.parse(content, context);
    const problems = [];
    for (let j = 0; j < context.eventCount; j++) {
        const e = context.getEventAt(j);
        problems.push(`parse: ${e.message}`);
    }
    const validation = card.validateProperties();
    for (const e of validation.validationEvents) problems.push(`validate: ${e.message}`);
    const el = card.render();
    if (el && i < 2) {
        const box = document.createElement("div");
        box.className = "card";
        box.appendChild(el);
        document.getElementById("cards").appendChild(box);
    }
    return {problems, rendered: !!el, text: el ? el.innerText.length : 0};
})"""

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    page.set_content(
        "<html><head><style>body{font-family:'Segoe UI',sans-serif;background:#ebebeb;margin:0;padding:16px}"
        "#cards{display:flex;gap:16px;align-items:flex-start}"
        ".card{width:520px;background:#fff;border-radius:6px;box-shadow:0 1px 3px #0003;overflow:hidden}</style></head>"
        "<body><div id='cards'></div></body></html>"
    )
    page.add_script_tag(path=lib)
    results = page.evaluate(CHECK, cards)
    page.locator("#cards").screenshot(path=shot)
    browser.close()

bad = [(i, r) for i, r in enumerate(results) if r["problems"] or not r["rendered"] or r["text"] == 0]
if bad:
    for i, r in bad[:10]:
        print(f"card {i}: {r}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"ok": True, "cards": len(results)}))
