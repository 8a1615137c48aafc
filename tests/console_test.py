"""The console in a real browser: Debian's chromium driven by Playwright for Python.

    python3 tests/console_test.py BASE_URL ADMIN_TOKEN RECEIVER_URL SCREENSHOT_DIR [SERVER_CERT CA]

With an https BASE_URL, SERVER_CERT and CA are PEM files: Chromium is told to accept exactly the
server certificate's key (its SPKI hash), and the script's own API calls trust CA.

tests/it/console.rs starts hookd (with the shipped host_allowlist plugin allowing hooks.slack.com
and 127.0.0.1, hooks.slack.com pinned to 127.0.0.1, the shipped ntfy transformer, and no retries)
and a local receiver, then runs this. It goes through the console as a person
would, at 1280 px and at 360 px, with nothing but the labels a person reads: sign in, create
(the seed example), the secret once, a 422 beside the URL field, a plugin's denial, an XSS name,
edit, send test, rotate, disable, delete; an endpoint with every option (event types, label
matchers, headers, rate limit, Ed25519, a client certificate), edited (only what changed is sent,
never a masked header value), 422s beside a matcher's and a header's input, a transformer
plugin's format, rotating to another algorithm; tokens, sign out. All along: no request to any
host but hookd, no error in the browser console (other than the failed requests the test makes
on purpose), no dialog. It runs the console's JavaScript unit tests in the same browser, and
saves a screenshot of each main screen at both widths. Exits non-zero on the first failure.
"""

import base64
import datetime
import hashlib
import json
import re
import ssl
import sys
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import expect, sync_playwright

BASE, TOKEN, RECEIVER, SHOTS = sys.argv[1:5]
ORIGIN = BASE.rstrip("/")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# HTTPS: the server certificate's key is the one Chromium accepts; the API calls below trust CA.
TLS = sys.argv[5:7]
SSL_CONTEXT = ssl.create_default_context(cafile=TLS[1]) if TLS else None
if TLS:
    with open(TLS[0], "rb") as f:
        SERVER_KEY = x509.load_pem_x509_certificate(f.read()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    CHROMIUM_ARGS.append("--ignore-certificate-errors-spki-list="
                         + base64.b64encode(hashlib.sha256(SERVER_KEY).digest()).decode())
SEED = {"name": "Slack Webhook", "url": "https://hooks.slack.com/services/T00/B00/xxx", "secret": "my-secret-key"}
XSS = "<img src=x onerror=alert(1)>"
# The console's failed requests the test causes on purpose (bad token, validation, denial).
EXPECTED_FAILURES = re.compile(r"Failed to load resource: the server responded with a status of (401|422)")

expect.set_options(timeout=10_000)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def client_certificate():
    """A self-signed EC certificate and its key (PEM), and the certificate's SHA-256 (hex)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hookd console test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode(),
            cert.fingerprint(hashes.SHA256()).hex())


def api(method, path, body=None):
    """A direct API call (for checks the page cannot make itself)."""
    req = urllib.request.Request(ORIGIN + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, context=SSL_CONTEXT) as r:
        return json.loads(r.read() or b"null")


UNIT_TESTS = """
async () => {
  const m = await import('/console/lib.js');
  const eq = (a, b, what) => { if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(what + ': ' + JSON.stringify(a) + ' != ' + JSON.stringify(b)); };
  // Paging over cursors, forward and back.
  const p = new m.Pager(2);
  eq(p.query(), '?limit=2', 'first page');
  eq(p.forward(), false, 'no next yet');
  p.loaded('wh-2');
  eq(p.forward(), true, 'forward');
  eq(p.query(), '?limit=2&cursor=wh-2', 'second page');
  eq(p.page(), 2, 'page 2');
  p.loaded(null);
  eq(p.hasNext(), false, 'last page');
  eq(p.back(), true, 'back');
  eq(p.query(), '?limit=2', 'back at the first');
  eq(p.back(), false, 'nothing before the first');
  // Errors: to the field they name (nested names to their root), the rest together.
  const problem = {errors: [{field: 'url', message: 'must be https'}, {field: 'labelMatchers[0]', message: 'bad'},
                            {field: 'headers.X-A', message: 'reserved'}, {field: 'extra', message: 'is not a known field'}]};
  const mapped = m.mapErrors(problem, ['url', 'labelMatchers', 'headers']);
  eq(mapped.fields, {url: ['must be https'], labelMatchers: ['[0]: bad'], headers: ['X-A: reserved']}, 'fields');
  eq(mapped.general, ['extra: is not a known field'], 'general');
  eq(m.mapErrors({title: 'Unauthorized', detail: 'the bearer token is not valid'}, []).general, ['the bearer token is not valid'], 'detail');
  eq(m.mapErrors(null, []).general, ['The request failed'], 'nothing to go on');
  // An exact name the form knows wins over its root; a list item is named by its line.
  const nested = m.mapErrors({errors: [{field: 'clientCertificate.privateKey', message: 'not a key'}, {field: 'labelMatchers[1]', message: 'bad'}]},
                             ['clientCertificate', 'clientCertificate.privateKey', 'labelMatchers'], (root, i) => `line ${i + 3}`);
  eq(nested.fields, {'clientCertificate.privateKey': ['not a key'], labelMatchers: ['line 4: bad']}, 'exact fields and lines');
  eq(m.linesOf(' a \\n\\n b\\r\\n'), {items: ['a', 'b'], lines: [1, 3]}, 'lines');
  eq([m.sameList(['a'], ['a']), m.sameList(['a'], ['a', 'b'])], [true, false], 'sameList');
  eq([m.PLUGIN_FORMAT.test('plugin:ntfy'), m.PLUGIN_FORMAT.test('plugin:a b'), m.PLUGIN_FORMAT.test('plugin:')], [true, false, false], 'plugin format');
  // Headers: an untouched table sends nothing (never a masked value back); a change sends them all,
  // with each stored value typed again; removing every row sends {}.
  const stored = [{name: 'X-Key', value: '', stored: 'X-Key'}, {name: 'X-Team', value: '', stored: 'X-Team'}];
  eq(m.headersToSend(stored, 2), {headers: undefined, errors: []}, 'unchanged headers');
  eq(m.headersToSend([...stored, {name: '', value: '', stored: null}], 2).headers, undefined, 'a blank new row changes nothing');
  eq(m.headersToSend([stored[0]], 2).errors, [{row: 0, message: 'type the value of X-Key again: saving a change replaces every header, and hookd shows stored values only masked'}], 'a kept value must be typed again');
  eq(m.headersToSend([{name: ' X-Key ', value: 'k', stored: 'X-Key'}], 2), {headers: {'X-Key': 'k'}, errors: []}, 'one header left');
  eq(m.headersToSend([], 2), {headers: {}, errors: []}, 'every header removed');
  eq(m.headersToSend([{name: 'A', value: '1', stored: null}, {name: 'a', value: '2', stored: null}, {name: '', value: '3', stored: null}]).errors,
     [{row: 1, message: 'a is given twice (header names ignore case)'}, {row: 2, message: 'needs a name'}], 'header rows checked');
  eq(m.headersToSend([]), {headers: undefined, errors: []}, 'no headers on a create');
  eq(m.pluginDenial("is denied by plugin 'hosts': not on the allow-list"), {plugin: 'hosts', reason: 'not on the allow-list'}, 'denial');
  eq(m.pluginDenial('must be https'), null, 'not a denial');
  // curl: the token stays $TOKEN; quotes in data survive the shell.
  eq(m.curl('POST', '/api/v1/x', {name: "it's"}, 'http://h'),
     `curl -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"name":"it'\\\\''s"}' 'http://h/api/v1/x'`, 'curl');
  eq(m.curl('GET', '/a', undefined, 'http://h'), `curl -H "Authorization: Bearer $TOKEN" 'http://h/a'`, 'curl GET');
  eq(m.utcFromInput('2027-01-02T03:04'), '2027-01-02T03:04:00Z', 'datetime-local');
  eq(m.utcFromInput('nonsense'), null, 'bad datetime');
  eq(m.matchesFilter({name: 'Slack', url: 'https://a/', id: 'wh-1'}, 'SLA'), true, 'filter by name');
  eq(m.matchesFilter({name: 'Slack', url: 'https://a/', id: 'wh-1'}, 'pager'), false, 'filter misses');
  eq(m.when('2026-11-27T10:00:05Z'), '2026-11-27 10:00:05 UTC', 'when');
  eq(m.answerOf({statusCode: null, error: 'timeout'}), 'timeout', 'answer of an error');
  // Location hashes: a malformed escape names the list instead of throwing a URIError.
  eq(m.routeOf('#/endpoints/wh-1%2Fx'), {view: 'endpoint', id: 'wh-1/x'}, 'an endpoint');
  eq(m.routeOf('#/endpoints/%E0%A4%A'), {view: 'endpoints'}, 'malformed escape');
  eq(m.routeOf('#/tokens'), {view: 'tokens'}, 'tokens');
  eq(m.routeOf(''), {view: 'endpoints'}, 'no hash');
  // The client: the token only in Authorization, never a cookie; problem+json kept.
  let seen;
  const fake = async (path, init) => { seen = init; return new Response(JSON.stringify({title: 'x', errors: []}), {status: 422}); };
  const r = await m.call('t0k', 'POST', '/p', {a: 1}, fake);
  eq([r.status, r.ok, r.problem.title], [422, false, 'x'], 'call');
  eq([seen.headers.Authorization, seen.credentials], ['Bearer t0k', 'omit'], 'auth header only');
  return 'ok';
}
"""


def run(browser, width):
    requests, errors = [], []
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not EXPECTED_FAILURES.search(m.text) else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("dialog", lambda d: errors.append(f"a dialog opened: {d.message}"))

    def shot(name):
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)

    def no_overflow(where):
        wide = page.evaluate("document.documentElement.scrollWidth")
        check(wide <= width, f"{where} at {width} px is {wide} px wide")

    def all_named(where):
        unnamed = page.evaluate("""() => [...document.querySelectorAll('input, button, select, textarea, a')]
            .filter(el => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
            .map(el => el.outerHTML)""")
        check(not unnamed, f"controls without a name on {where}: {unnamed}")

    def error_of(locator):
        """The error slot an input names last in its aria-describedby."""
        return page.locator("#" + locator.get_attribute("aria-describedby").split()[-1])

    resp = page.goto(f"{ORIGIN}/console/")
    headers = resp.headers
    csp = headers.get("content-security-policy", "")
    check("default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-" not in csp, f"CSP: {csp}")
    check(headers.get("x-content-type-options") == "nosniff", "nosniff")
    check(headers.get("referrer-policy") == "no-referrer", "referrer policy")

    # The console's own unit tests, in this browser.
    check(page.evaluate(UNIT_TESTS) == "ok", "unit tests")

    # A bad token shows the 401's message; the good one signs in, by keyboard alone.
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type("not-the-token-000000000")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").filter(has_text="not valid")).to_be_visible()
    shot("signin")
    page.get_by_label("API token").fill(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Endpoints", level=1)).to_be_visible()
    check(page.evaluate("document.cookie") == "", "no cookies")
    check(page.evaluate("sessionStorage.getItem('hookd.token')") == TOKEN, "token in sessionStorage")
    check(page.evaluate("localStorage.length") == 0, "nothing in localStorage")

    # Create the seed example: the secret is shown once.
    name = f"{SEED['name']} {width}"
    form = page.locator("form", has=page.get_by_role("button", name="Create endpoint"))
    form.get_by_label("Name").fill(name)
    form.get_by_label("URL").fill(SEED["url"])
    expect(form.get_by_label("Signing enabled")).to_be_checked()
    expect(page.get_by_text("empty and hookd generates one")).to_be_visible()
    form.get_by_label("Signing secret").fill(SEED["secret"])
    form.get_by_role("button", name="Create endpoint").click()
    panel = page.get_by_role("status", name=f"Signing secret of {name}")
    expect(panel).to_contain_text(SEED["secret"])
    expect(panel).to_contain_text("you will not see this again")
    expect(panel.get_by_role("button", name="Copy")).to_be_visible()
    row = page.get_by_role("row", name=re.compile(re.escape(name)))
    expect(row).to_contain_text("hooks.slack.com")
    shot("endpoints")
    no_overflow("the endpoint list")
    page.reload()
    expect(page.get_by_role("heading", name="Endpoints", level=1)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(re.escape(name)))).to_be_visible()
    check(SEED["secret"] not in page.content(), "the secret is gone after a reload")

    # A 422 shows beside the URL field; a plugin's denial names the plugin.
    form = page.locator("form", has=page.get_by_role("button", name="Create endpoint"))
    form.get_by_label("Name").fill("bad")
    form.get_by_label("URL").fill("ftp://example.com/")
    form.get_by_role("button", name="Create endpoint").click()
    url_input = form.get_by_label("URL")
    expect(url_input).to_have_attribute("aria-invalid", "true")
    error_id = url_input.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("http")
    form.get_by_label("URL").fill("https://evil.example.com/")
    form.get_by_role("button", name="Create endpoint").click()
    expect(page.locator(f"#{error_id}")).to_contain_text("Denied by plugin hosts")

    # An endpoint named like HTML shows as those characters and runs nothing.
    form.get_by_label("Name").fill(XSS)
    form.get_by_label("URL").fill(SEED["url"])
    form.get_by_label("Signing secret").fill("")
    form.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("link", name=XSS)).to_be_visible()
    check(page.locator("main img").count() == 0, "no img element was made from a name")
    page.get_by_label("Filter").fill("slack webhook")
    expect(page.get_by_role("link", name=XSS)).to_have_count(0)
    page.get_by_label("Filter").fill("")

    # Edit: point the seed endpoint at the local receiver.
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    check(SEED["secret"] not in page.content(), "the secret is not on the endpoint's page")
    expect(page.locator("dl.facts")).to_contain_text("****-key")
    edit = page.locator("form", has=page.get_by_role("button", name="Save changes"))
    edit.get_by_label("URL").fill(RECEIVER)
    edit.get_by_role("button", name="Save changes").click()
    expect(page.locator("dl.facts")).to_contain_text(RECEIVER)

    # Send test, and see its attempt.
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status").filter(has_text="Test delivered: 200")).to_be_visible()
    attempt = page.get_by_role("row", name=re.compile("succeeded"))
    expect(attempt).to_contain_text("200")
    attempt.get_by_role("button", name="Show response").click()
    expect(attempt.locator("pre")).to_be_visible()
    shot("endpoint")
    no_overflow("the endpoint page")

    # Rotate: the new secret once, and until when the old one signs.
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.get_by_role("status", name="New signing secret")
    expect(rotated).to_contain_text("whsec_")
    expect(rotated).to_contain_text("keeps signing too, until")

    # Disable, enable.
    page.get_by_role("button", name="Disable endpoint").click()
    expect(page.locator("dl.facts")).to_contain_text("disabled")
    page.get_by_role("button", name="Enable endpoint").click()
    expect(page.locator("dl.facts")).to_contain_text("enabled")

    # Delete the XSS endpoint, after a confirmation.
    page.get_by_role("link", name="All endpoints").click()
    page.get_by_role("link", name=XSS).click()
    page.get_by_role("button", name="Delete endpoint").click()
    confirm = page.get_by_role("alertdialog", name="Confirm deletion")
    expect(confirm).to_contain_text("cannot be undone")
    confirm.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_role("heading", name="Endpoints", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=XSS)).to_have_count(0)

    # Every option through the create form: event types, label matchers, headers, a rate limit,
    # Ed25519 and a client certificate.
    cert_pem, key_pem, fingerprint = client_certificate()
    oname = f"Options {width}"
    form = page.locator("form", has=page.get_by_role("button", name="Create endpoint"))
    form.get_by_label("Name", exact=True).fill(oname)
    form.get_by_label("URL", exact=True).fill(RECEIVER + "/options")
    form.locator("summary").click()
    form.get_by_label("Event types").fill("alertmanager.*\ndeploy")
    form.get_by_label("Label matchers").fill('severity=~"critical|warning"\n\nenv!=staging')
    form.get_by_role("button", name="Add a header").click()
    expect(form.get_by_label("Header 1 name")).to_be_focused()
    page.keyboard.type("X-Api-Key")
    form.get_by_label("Header 1 value").fill("k-0123456789ab")
    form.get_by_role("button", name="Add a header").click()
    form.get_by_label("Header 2 name").fill("X-Team")
    form.get_by_label("Header 2 value").fill("db")
    form.get_by_label("Rate limit").fill("5")
    form.get_by_label("Signing algorithm").select_option("ed25519")
    form.get_by_label("Certificate chain").fill(cert_pem)
    form.get_by_label("Private key").fill(key_pem)
    all_named("the create form")
    shot("create-options")
    no_overflow("the create form with every option")
    form.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_role("status", name=f"Signing secret of {oname}")).to_contain_text("whsk_")

    # The API has them all, the header values masked.
    listed = api("GET", "/api/v1/alerting/webhook-endpoints?limit=200")["endpoints"]
    got = next(e for e in listed if e["name"] == oname)
    opath = f"/api/v1/alerting/webhook-endpoints/{got['id']}"
    check(got["filterTypes"] == ["alertmanager.*", "deploy"], f"filterTypes: {got}")
    check(got["labelMatchers"] == ['severity=~"critical|warning"', 'env!="staging"'], f"labelMatchers: {got}")
    check(got["headers"] == {"X-Api-Key": "****89ab", "X-Team": "****"}, f"headers: {got}")
    check(got["rateLimit"] == 5, f"rateLimit: {got}")
    check(got["signingAlgorithm"] == "ed25519" and got["signingPublicKey"].startswith("whpk_"), f"signing: {got}")
    cc = got["clientCertificate"]
    check(cc["fingerprintSha256"] == fingerprint and cc["chainLength"] == 1 and cc["notAfter"], f"clientCertificate: {got}")

    # The endpoint's page shows them.
    page.get_by_role("link", name=oname, exact=True).click()
    expect(page.get_by_role("heading", name=oname, level=1)).to_be_visible()
    facts = page.locator("dl.facts")
    for text in ["alertmanager.*", "deploy", 'severity=~"critical|warning"', 'env!="staging"', "X-Api-Key: ****89ab",
                 "X-Team: ****", "5 per second", "on, ed25519", got["signingPublicKey"], fingerprint, "1 certificate"]:
        expect(facts).to_contain_text(text)
    check("k-0123456789ab" not in page.content(), "a header's value is not on the page")
    edit = page.locator("form", has=page.get_by_role("button", name="Save changes"))
    expect(edit).to_contain_text("It changes only with the secret")
    expect(edit.get_by_label("Header 1 name")).to_have_value("X-Api-Key")
    expect(edit.get_by_label("Header 1 value")).to_have_value("")
    expect(edit.get_by_label("Header 1 value")).to_have_attribute("placeholder", "****89ab")
    expect(edit.get_by_label("Rate limit")).to_have_value("5")
    expect(edit.get_by_label("Event types")).to_have_value("alertmanager.*\ndeploy")
    shot("endpoint-options")
    no_overflow("the endpoint page with every option")
    all_named("the endpoint page")

    # Edit: remove the rate limit, change the matchers; only those are sent (no masked header).
    edit.get_by_label("Rate limit").fill("")
    edit.get_by_label("Label matchers").fill('severity="critical"')
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        edit.get_by_role("button", name="Save changes").click()
    sent = patch.value.post_data_json
    check(sent == {"labelMatchers": ['severity="critical"'], "rateLimit": None}, f"the PATCH sent {sent}")
    expect(facts).to_contain_text("no limit")
    expect(facts).not_to_contain_text("warning")
    got = api("GET", opath)["endpoint"]
    check(got["rateLimit"] is None and got["labelMatchers"] == ['severity="critical"'], f"after the edit: {got}")
    check(got["headers"] == {"X-Api-Key": "****89ab", "X-Team": "****"}, f"headers kept: {got}")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status").filter(has_text="Test delivered: 200")).to_be_visible()

    # A matcher that does not parse: the API's 422 beside the matchers, naming its line.
    matchers = edit.get_by_label("Label matchers")
    matchers.fill('severity="critical"\n\nseverity=~"("')
    edit.get_by_role("button", name="Save changes").click()
    expect(matchers).to_have_attribute("aria-invalid", "true")
    expect(matchers).to_be_focused()
    expect(error_of(matchers)).to_contain_text("line 3: is not an Alertmanager matcher")
    matchers.fill('severity="critical"')

    # Headers: a change needs each kept value typed again (stored ones are only masked), checked
    # before any request; a name hookd sets is the API's 422 beside its row.
    edit.get_by_role("button", name="Remove header 2").click()
    edit.get_by_role("button", name="Save changes").click()
    value = edit.get_by_label("Header 1 value")
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(error_of(value)).to_contain_text("type the value of X-Api-Key again")
    value.fill("k-new-0123456789")
    edit.get_by_role("button", name="Add a header").click()
    edit.get_by_label("Header 2 name").fill("Content-Type")
    edit.get_by_label("Header 2 value").fill("text/plain")
    edit.get_by_role("button", name="Save changes").click()
    expect(edit.get_by_label("Header 2 name")).to_have_attribute("aria-invalid", "true")
    expect(error_of(edit.get_by_label("Header 2 name"))).to_contain_text("a header hookd sets itself")
    shot("endpoint-errors")
    check(api("GET", opath)["endpoint"]["headers"] == {"X-Api-Key": "****89ab", "X-Team": "****"}, "nothing saved yet")
    edit.get_by_role("button", name="Remove header 2").click()
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        edit.get_by_role("button", name="Save changes").click()
    sent = patch.value.post_data_json
    check(sent == {"headers": {"X-Api-Key": "k-new-0123456789"}}, f"the PATCH sent {sent}")
    expect(facts).to_contain_text("X-Api-Key: ****6789")
    expect(facts).not_to_contain_text("X-Team")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status").filter(has_text="Test delivered: 200")).to_be_visible()

    # A transformer plugin's format: typed after "Other (plugin:…)", checked here first, then by
    # the API (which knows the configuration's transformers).
    edit.get_by_label("Format", exact=True).select_option(label="Other (plugin:\u2026)")
    plugin = edit.get_by_label("Plugin format")
    plugin.fill("plugin:no such")
    edit.get_by_role("button", name="Save changes").click()
    expect(plugin).to_have_attribute("aria-invalid", "true")
    expect(error_of(plugin)).to_contain_text("1-64 letters, digits, _ or -")
    plugin.fill("plugin:nope")
    edit.get_by_role("button", name="Save changes").click()
    expect(error_of(plugin)).to_contain_text("names no transformer of the configuration's [[transformers]] (it has ntfy)")
    plugin.fill("plugin:ntfy")
    edit.get_by_role("button", name="Save changes").click()
    expect(facts).to_contain_text("plugin:ntfy")
    expect(edit.get_by_label("Plugin format")).to_have_value("plugin:ntfy")
    page.get_by_role("button", name="Preview a message").click()
    expect(page.locator(".result")).to_contain_text("(plugin:ntfy)")

    # Remove the client certificate; rotate to HMAC.
    edit.get_by_label("Remove the client certificate").check()
    expect(edit.get_by_label("Certificate chain")).to_be_disabled()
    with page.expect_request(lambda r: r.method == "PATCH") as patch:
        edit.get_by_role("button", name="Save changes").click()
    check(patch.value.post_data_json == {"clientCertificate": None}, f"the PATCH sent {patch.value.post_data_json}")
    expect(facts).not_to_contain_text(fingerprint)
    check(api("GET", opath)["endpoint"]["clientCertificate"] is None, "certificate removed")
    page.get_by_label("Algorithm of the next secret").select_option("hmac-sha256")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("status", name="New signing secret")).to_contain_text("whsec_")
    expect(facts).to_contain_text("on, hmac-sha256")
    got = api("GET", opath)["endpoint"]
    check(got["signingAlgorithm"] == "hmac-sha256" and got["signingPublicKey"] is None, f"rotated: {got}")
    page.get_by_role("link", name="All endpoints").click()
    expect(page.get_by_role("heading", name="Endpoints", level=1)).to_be_visible()

    # A delivery that gave up (a receiver that refuses connections) can be resent from its
    # attempt.
    dead = api("POST", "/api/v1/alerting/webhook-endpoints", {
        "name": f"dead {width}", "url": "http://127.0.0.1:1/", "signingEnabled": True,
        "signingSecret": "", "filterTypes": ["console.dead"]})["endpoint"]
    api("POST", "/api/v1/alerting/alerts", {"eventType": "console.dead", "payload": {}})
    page.goto(f"{ORIGIN}/console/#/endpoints/{dead['id']}")
    failed = page.get_by_role("row", name=re.compile("failed"))
    for _ in range(50):
        if failed.count():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(failed).to_contain_text("connect")
    failed.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("status").filter(has_text="Resent: 1 delivery requeued")).to_be_visible()
    api("DELETE", f"/api/v1/alerting/webhook-endpoints/{dead['id']}")
    page.get_by_role("link", name="All endpoints").click()

    # A malformed hash (a broken escape) shows the list, with no uncaught URIError (any page
    # error fails the run below).
    page.goto(f"{ORIGIN}/console/#/endpoints/%E0%A4%A")
    expect(page.get_by_role("heading", name="Endpoints", level=1)).to_be_visible()

    # Tokens: create (plaintext once), list, revoke.
    page.get_by_role("link", name="Tokens").click()
    expect(page.get_by_role("heading", name="Tokens", level=1)).to_be_visible()
    tform = page.locator("form", has=page.get_by_role("button", name="Create token"))
    tname = f"ci {width}"
    tform.get_by_label("Name").fill(tname)
    tform.get_by_label("alerts:write").check()
    tform.get_by_role("button", name="Create token").click()
    tpanel = page.get_by_role("status", name=f"Token {tname}")
    expect(tpanel).to_contain_text("hkd_")
    expect(page.get_by_role("row", name=re.compile(tname))).to_contain_text("alerts:write")
    shot("tokens")
    no_overflow("the token list")
    page.get_by_role("button", name=f"Revoke {tname}").click()
    page.get_by_role("alertdialog", name="Confirm revocation").get_by_role("button", name="Yes, revoke").click()
    expect(page.get_by_role("row", name=re.compile(tname))).to_have_count(0)
    check(all(t["name"] != tname for t in api("GET", "/api/v1/tokens?limit=200")["tokens"]), "revoked")

    # The curl of the last request, token elided.
    page.get_by_text("curl for the last request").click()
    command = page.locator("#curl-command").inner_text()
    check(command.startswith("curl") and "$TOKEN" in command and TOKEN not in command, command)

    # Every control has an accessible name.
    all_named("the token page")

    # Sign out forgets the token.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    check(page.evaluate("sessionStorage.getItem('hookd.token')") is None, "token forgotten")

    others = [u for u in requests if not u.startswith(ORIGIN + "/") and not u.startswith("data:")]
    check(not others, f"requests to other hosts: {others}")
    check(not errors, f"browser console errors: {errors}")
    context.close()
    return len(requests)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    counts = [run(browser, w) for w in (1280, 360)]
    browser.close()
print(json.dumps({"ok": True, "requests": counts}))
