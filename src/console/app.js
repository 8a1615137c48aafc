// The hookd console: a page over hookd's own /api/v1, with the token a person enters. Every value
// from the API is put in the page as text (textContent, attributes via setAttribute), never as
// HTML; the Content-Security-Policy allows scripts and styles from this origin only.

import { clearErrors, field, formError, h, nextId, showProblem, td } from "./dom.js";
import {
  PAGE_SIZE, Pager, TOKEN_KEY, answerOf, call, curl, describe, matchesFilter, routeOf, utcFromInput, when,
} from "./lib.js";
import { ALGORITHMS, describeCertificate, optionInputs } from "./options.js";

const ENDPOINTS = "/api/v1/alerting/webhook-endpoints";
const SCOPES = ["endpoints:read", "endpoints:write", "alerts:write", "admin"];

const app = document.getElementById("app");
let token = sessionStorage.getItem(TOKEN_KEY);

// ---------- the API, and the curl of the last request ----------

const curlText = h("code", { id: "curl-command" });

async function api(method, path, body) {
  curlText.textContent = curl(method, path, body, location.origin);
  const r = await call(token, method, path, body);
  if (r.status === 401) {
    signOut(describe(r.problem));
  }
  return r;
}

// ---------- page parts ----------

/** A panel showing a secret this once, with a copy button. */
function secretPanel(title, secret, ...notes) {
  const code = h("code", { class: "secret-value" }, secret);
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(secret);
        copy.textContent = "Copied";
      } catch {
        getSelection().selectAllChildren(code);
        copy.textContent = "Selected: press Ctrl+C";
      }
    },
  }, "Copy");
  return h(
    "section",
    { class: "secret", role: "status", "aria-label": title },
    h("h3", {}, title),
    h("p", { class: "warning" }, "Copy it now: you will not see this again."),
    h("p", {}, code, " ", copy),
    notes.map((n) => h("p", {}, n)),
  );
}

function notice(text, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

function table(caption, headers, rows) {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
}

function pagerControls(pager, reload) {
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("button", {
      type: "button",
      disabled: !pager.hasPrevious(),
      onclick: () => pager.back() && reload(),
    }, "Previous page"),
    h("span", {}, `Page ${pager.page()}`),
    h("button", {
      type: "button",
      disabled: !pager.hasNext(),
      onclick: () => pager.forward() && reload(),
    }, "Next page"),
  );
}

/** Shows `node` as the page, and moves focus to its heading for keyboard and screen readers. */
function show(node) {
  const main = document.getElementById("main");
  main.replaceChildren(node);
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

// ---------- sign in and out ----------

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  renderSignIn(message);
}

function renderSignIn(message) {
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        token = input.value.trim();
        const r = await call(token, "GET", `${ENDPOINTS}?limit=1`);
        if (r.status === 401 || r.status === 0) {
          token = null;
          form.querySelector(".form-error").textContent = describe(r.problem);
          input.focus();
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, token);
        if (!location.hash) location.hash = "#/endpoints";
        renderShell();
      },
    },
    h("h1", {}, "hookd console"),
    field("API token", input, "token", "Kept in this browser tab only (sessionStorage), sent only in the Authorization header."),
    formError(),
    h("button", { type: "submit" }, "Sign in"),
  );
  app.replaceChildren(h("main", { id: "main", class: "narrow" }, form));
  if (message) form.querySelector(".form-error").textContent = message;
  input.focus();
}

function renderShell() {
  const link = (href, text) => h("a", { href }, text);
  app.replaceChildren(
    h(
      "header",
      { class: "top" },
      h("span", { class: "brand" }, "hookd"),
      h("nav", { "aria-label": "Main" }, link("#/endpoints", "Endpoints"), link("#/tokens", "Tokens")),
      h("button", { type: "button", class: "secondary", onclick: () => signOut() }, "Sign out"),
    ),
    h("main", { id: "main", tabindex: "-1" }),
    h(
      "footer",
      {},
      h("details", { class: "curl" }, h("summary", {}, "curl for the last request"), h("pre", {}, curlText)),
    ),
  );
  route();
}

// ---------- endpoints ----------

const endpointPager = new Pager(PAGE_SIZE);

function createEndpointForm(onCreated) {
  const name = h("input", { type: "text", maxlength: "200", required: true });
  const url = h("input", { type: "url", required: true, placeholder: "https://receiver.example/hook" });
  const signing = h("input", { type: "checkbox", checked: true });
  const secret = h("input", { type: "text", autocomplete: "off", spellcheck: "false" });
  const options = optionInputs(null);
  const known = () => ["name", "url", "signingEnabled", "signingSecret", ...options.known()];
  const form = h(
    "form",
    {
      class: "card",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: name.value, url: url.value, signingEnabled: signing.checked, signingSecret: secret.value };
        const errors = options.collect(body);
        if (errors.length) return showProblem(form, { errors }, known(), options.itemName);
        const r = await api("POST", ENDPOINTS, body);
        if (!r.ok) return showProblem(form, options.toRows(r.problem), known(), options.itemName);
        clearErrors(form);
        onCreated(r.data);
      },
    },
    h("h2", {}, "Create an endpoint"),
    field("Name", name, "name"),
    field("URL", url, "url"),
    field("Signing enabled", signing, "signingEnabled"),
    field("Signing secret", secret, "signingSecret", "Leave empty and hookd generates one (whsec_...); or 12-256 printable characters, or whsec_ + base64."),
    h(
      "details",
      { class: "options" },
      h("summary", {}, "Format, routing, headers, rate limit, signing algorithm, client certificate"),
      options.nodes,
    ),
    formError(),
    h("button", { type: "submit" }, "Create endpoint"),
  );
  return form;
}

async function renderEndpoints(created) {
  const list = h("section", { class: "card", "aria-label": "Endpoints" });
  const filter = h("input", { type: "search", placeholder: "name, URL or id" });
  let items = [];
  const fill = () => {
    const rows = items
      .filter((e) => matchesFilter(e, filter.value))
      .map((e) =>
        h(
          "tr",
          {},
          td("Name", h("a", { href: `#/endpoints/${encodeURIComponent(e.id)}` }, e.name)),
          td("URL", h("span", { class: "url" }, e.url)),
          td("Signing", e.signingEnabled ? `on (${e.signingAlgorithm})` : "off"),
          td("State", e.disabled ? "disabled" : e.circuit?.state === "closed" ? "enabled" : `enabled, circuit ${e.circuit?.state}`),
          td("Updated", when(e.updatedAt)),
        ),
      );
    list.replaceChildren(
      h("h2", {}, "Endpoints"),
      field("Filter", filter, "filter", "Filters the page shown."),
      rows.length || items.length
        ? table("Webhook endpoints", ["Name", "URL", "Signing", "State", "Updated"], rows)
        : h("p", {}, "No endpoints yet."),
      pagerControls(endpointPager, load),
    );
  };
  filter.addEventListener("input", fill);
  const load = async () => {
    const r = await api("GET", `${ENDPOINTS}${endpointPager.query()}`);
    if (!r.ok) {
      list.replaceChildren(h("h2", {}, "Endpoints"), notice(describe(r.problem)));
      return;
    }
    items = r.data.endpoints;
    endpointPager.loaded(r.data.nextCursor);
    fill();
  };
  const page = h(
    "div",
    {},
    h("h1", {}, "Endpoints"),
    created
      ? secretPanel(
          `Signing secret of ${created.endpoint.name}`,
          created.signingSecretPlaintext,
          h("a", { href: `#/endpoints/${encodeURIComponent(created.endpoint.id)}` }, "Open the endpoint"),
        )
      : null,
    list,
    createEndpointForm((data) => renderEndpoints(data)),
  );
  show(page);
  await load();
}

function describeCircuit(c) {
  if (!c || c.state === "closed") return "closed";
  const next = c.nextProbeAt ? `, next probe ${when(c.nextProbeAt)}` : "";
  return `${c.state} after ${c.consecutiveFailures} failures${next}`;
}

async function renderEndpoint(id) {
  const path = `${ENDPOINTS}/${encodeURIComponent(id)}`;
  const r = await api("GET", path);
  if (!r.ok) {
    show(h("div", {}, h("p", {}, h("a", { href: "#/endpoints" }, "All endpoints")), h("h1", {}, "Endpoint"), notice(describe(r.problem))));
    return;
  }
  const e = r.data.endpoint;
  const result = h("div", { class: "result", "aria-live": "polite" });
  const say = (...nodes) => result.replaceChildren(...nodes);

  const list = (items) => h("ul", { class: "plain" }, items.map((x) => h("li", {}, x)));
  const headers = Object.entries(e.headers ?? {});
  const facts = [
    ["ID", e.id],
    ["URL", e.url],
    ["Format", e.format],
    e.formatOptions?.routingKey ? ["Routing key", e.formatOptions.routingKey] : null,
    e.formatOptions?.severity ? ["PagerDuty severity", e.formatOptions.severity] : null,
    ["Signing", e.signingEnabled ? `on, ${e.signingAlgorithm}` : `off (${e.signingAlgorithm})`],
    ["Secret", e.signingSecretMasked],
    e.signingPublicKey ? ["Public key", e.signingPublicKey] : null,
    ["State", e.disabled ? "disabled" : "enabled"],
    ["Circuit", describeCircuit(e.circuit)],
    ["Event types", e.filterTypes?.length ? list(e.filterTypes) : "every type"],
    ["Label matchers", e.labelMatchers?.length ? list(e.labelMatchers) : "none (every alert)"],
    ["Headers", headers.length ? list(headers.map(([k, v]) => `${k}: ${v}`)) : "none"],
    ["Rate limit", e.rateLimit ? `${e.rateLimit} per second` : "no limit"],
    ["Client certificate", e.clientCertificate ? describeCertificate(e.clientCertificate) : "none"],
    ["Created", when(e.createdAt)],
    ["Updated", when(e.updatedAt)],
  ].filter(Boolean);

  const name = h("input", { type: "text", value: e.name, maxlength: "200" });
  const url = h("input", { type: "url", value: e.url });
  const signing = h("input", { type: "checkbox", checked: e.signingEnabled });
  const options = optionInputs(e);
  const known = () => ["name", "url", "signingEnabled", ...options.known()];
  const edit = h(
    "form",
    {
      class: "card",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {};
        if (name.value !== e.name) body.name = name.value;
        if (url.value !== e.url) body.url = url.value;
        if (signing.checked !== e.signingEnabled) body.signingEnabled = signing.checked;
        const errors = options.collect(body);
        if (errors.length) return showProblem(edit, { errors }, known(), options.itemName);
        if (Object.keys(body).length === 0) {
          clearErrors(edit);
          edit.querySelector(".form-error").textContent = "Nothing changed.";
          return;
        }
        const u = await api("PATCH", path, body);
        if (!u.ok) return showProblem(edit, options.toRows(u.problem), known(), options.itemName);
        renderEndpoint(id);
      },
    },
    h("h2", {}, "Edit"),
    field("Name", name, "name"),
    field("URL", url, "url"),
    field("Signing enabled", signing, "signingEnabled"),
    h(
      "div",
      { class: "field" },
      h("p", { class: "label" }, "Signing algorithm"),
      h("p", { class: "readonly" }, e.signingAlgorithm),
      e.signingPublicKey ? h("p", { class: "readonly" }, "Public key: ", h("code", { class: "secret-value" }, e.signingPublicKey)) : null,
      h("p", { class: "hint" }, "It changes only with the secret: choose it under Actions and rotate."),
    ),
    options.nodes,
    formError(),
    h("button", { type: "submit" }, "Save changes"),
  );

  const rotateAlgorithm = h(
    "select",
    {},
    ALGORITHMS.map((a) => h("option", { value: a, selected: a === e.signingAlgorithm }, a)),
  );
  const action = (label, fn, cls) => h("button", { type: "button", class: cls, onclick: fn }, label);
  const actions = h(
    "section",
    { class: "card", "aria-label": "Actions" },
    h("h2", {}, "Actions"),
    field("Algorithm of the next secret", rotateAlgorithm, "signingAlgorithm", "Rotate secret keeps the algorithm, or switches to this one."),
    h(
      "div",
      { class: "buttons" },
      action("Send test", async () => {
        say(h("p", {}, "Sending..."));
        const t = await api("POST", `${path}/test`);
        if (!t.ok) return say(notice(describe(t.problem)));
        const a = t.data.attempt;
        say(notice(`Test ${a.outcome === "succeeded" ? "delivered" : "failed"}: ${answerOf(a)} in ${a.durationMs} ms.`, a.outcome === "succeeded" ? "ok" : "error"));
        loadAttempts();
      }),
      action("Preview a message", async () => {
        const t = await api("POST", `${path}/preview`);
        if (!t.ok) return say(notice(describe(t.problem)));
        const req = t.data.request;
        let shown = req.body;
        try {
          shown = JSON.stringify(JSON.parse(req.body), null, 2);
        } catch (_) {
          // not JSON: shown as sent
        }
        say(h("div", {}, h("p", {}, `What a sample alert becomes (${req.format}), as it would be sent to ${req.url}:`), h("pre", { class: "preview" }, shown)));
      }),
      action("Rotate secret", async () => {
        const switching = rotateAlgorithm.value !== e.signingAlgorithm;
        const t = switching
          ? await api("POST", `${path}/rotate-secret`, { signingAlgorithm: rotateAlgorithm.value })
          : await api("POST", `${path}/rotate-secret`);
        if (!t.ok) return say(notice(describe(t.problem)));
        await renderEndpoint(id);
        const grace = t.data.previousSecretValidUntil
          ? `The previous secret keeps signing too, until ${when(t.data.previousSecretValidUntil)}, so receivers can switch over.`
          : "The previous secret no longer signs.";
        document.querySelector(".result").replaceChildren(secretPanel("New signing secret", t.data.signingSecretPlaintext, grace));
      }),
      action(e.disabled ? "Enable endpoint" : "Disable endpoint", async () => {
        const t = await api("PATCH", path, { disabled: !e.disabled });
        if (!t.ok) return say(notice(describe(t.problem)));
        renderEndpoint(id);
      }),
      action("Delete endpoint", () => {
        say(
          h(
            "div",
            { class: "confirm", role: "alertdialog", "aria-label": "Confirm deletion" },
            h("p", {}, `Delete ${e.name}? Its queued deliveries and attempt log go with it. This cannot be undone.`),
            action("Yes, delete", async () => {
              const d = await api("DELETE", path);
              if (!d.ok) return say(notice(describe(d.problem)));
              location.hash = "#/endpoints";
            }, "danger"),
            " ",
            action("Cancel", () => say(), "secondary"),
          ),
        );
        result.querySelector("button").focus();
      }, "danger"),
    ),
    result,
  );

  const attemptsPager = new Pager(PAGE_SIZE);
  const attempts = h("section", { class: "card", "aria-label": "Attempts" });
  async function loadAttempts() {
    const a = await api("GET", `${path}/attempts${attemptsPager.query()}`);
    if (!a.ok) return attempts.replaceChildren(h("h2", {}, "Attempts"), notice(describe(a.problem)));
    attemptsPager.loaded(a.data.nextCursor);
    const rows = a.data.attempts.map((t) => {
      const body = h("pre", { class: "response", hidden: true }, t.responseBody || "(empty)");
      const toggle = h("button", {
        type: "button",
        class: "secondary",
        "aria-expanded": "false",
        onclick: () => {
          body.hidden = !body.hidden;
          toggle.setAttribute("aria-expanded", String(!body.hidden));
          toggle.textContent = body.hidden ? "Show response" : "Hide response";
        },
      }, "Show response");
      const resend = t.outcome === "failed"
        ? h("button", {
            type: "button",
            onclick: async () => {
              const s = await api("POST", `/api/v1/alerting/messages/${encodeURIComponent(t.messageId)}/resend`);
              say(s.ok ? notice(`Resent: ${s.data.deliveries} delivery requeued.`, "ok") : notice(describe(s.problem)));
              loadAttempts();
            },
          }, "Resend")
        : null;
      return h(
        "tr",
        {},
        td("Time", when(t.timestamp)),
        td("Outcome", t.outcome),
        td("Answer", answerOf(t)),
        td("Duration", `${t.durationMs} ms`),
        td("Next attempt", when(t.nextAttemptAt)),
        td("Response", toggle, resend ? " " : null, resend, body),
      );
    });
    attempts.replaceChildren(
      h("h2", {}, "Attempts"),
      rows.length
        ? table("Delivery attempts, newest first", ["Time", "Outcome", "Answer", "Duration", "Next attempt", "Response"], rows)
        : h("p", {}, "No attempts yet."),
      pagerControls(attemptsPager, loadAttempts),
    );
  }

  show(
    h(
      "div",
      {},
      h("p", {}, h("a", { href: "#/endpoints" }, "All endpoints")),
      h("h1", {}, e.name),
      h("dl", { class: "facts card" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      actions,
      edit,
      attempts,
    ),
  );
  await loadAttempts();
}

// ---------- tokens ----------

const tokenPager = new Pager(PAGE_SIZE);

async function renderTokens(created) {
  const list = h("section", { class: "card", "aria-label": "Tokens" });
  const result = h("div", { class: "result", "aria-live": "polite" });
  const load = async () => {
    const r = await api("GET", `/api/v1/tokens${tokenPager.query()}`);
    if (!r.ok) return list.replaceChildren(h("h2", {}, "Tokens"), notice(describe(r.problem)));
    tokenPager.loaded(r.data.nextCursor);
    const rows = r.data.tokens.map((t) =>
      h(
        "tr",
        {},
        td("Name", t.name),
        td("Scopes", t.scopes.join(", ")),
        td("Created", when(t.createdAt)),
        td("Expires", t.expiresAt ? when(t.expiresAt) : "never"),
        td("Last used", t.lastUsedAt ? when(t.lastUsedAt) : "never"),
        td(
          "Revoke",
          h("button", {
            type: "button",
            class: "danger",
            "aria-label": `Revoke ${t.name}`,
            onclick: () => {
              result.replaceChildren(
                h(
                  "div",
                  { class: "confirm", role: "alertdialog", "aria-label": "Confirm revocation" },
                  h("p", {}, `Revoke the token ${t.name}? Whatever uses it stops working.`),
                  h("button", {
                    type: "button",
                    class: "danger",
                    onclick: async () => {
                      const d = await api("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`);
                      result.replaceChildren(d.ok ? notice(`Revoked ${t.name}.`, "ok") : notice(describe(d.problem)));
                      load();
                    },
                  }, "Yes, revoke"),
                  " ",
                  h("button", { type: "button", class: "secondary", onclick: () => result.replaceChildren() }, "Cancel"),
                ),
              );
              result.querySelector("button").focus();
            },
          }, "Revoke"),
        ),
      ),
    );
    list.replaceChildren(
      h("h2", {}, "Tokens"),
      table("API tokens", ["Name", "Scopes", "Created", "Expires", "Last used", "Revoke"], rows),
      pagerControls(tokenPager, load),
    );
  };

  const name = h("input", { type: "text", maxlength: "200", required: true });
  const boxes = SCOPES.map((s) => h("input", { type: "checkbox", value: s }));
  const expires = h("input", { type: "datetime-local" });
  const known = ["name", "scopes", "expiresAt"];
  const scopesField = h(
    "fieldset",
    { class: "field" },
    h("legend", {}, "Scopes"),
    boxes.map((b) => {
      const id = nextId("scope");
      b.id = id;
      b.dataset.field = "scopes";
      return h("div", { class: "check" }, b, h("label", { for: id }, b.value));
    }),
    h("p", { class: "field-error", "data-error-for": "scopes" }),
  );
  const form = h(
    "form",
    {
      class: "card",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: name.value, scopes: boxes.filter((b) => b.checked).map((b) => b.value) };
        if (expires.value) body.expiresAt = utcFromInput(expires.value) ?? expires.value;
        const r = await api("POST", "/api/v1/tokens", body);
        if (!r.ok) return showProblem(form, r.problem, known);
        renderTokens(r.data);
      },
    },
    h("h2", {}, "Create a token"),
    field("Name", name, "name"),
    scopesField,
    field("Expires at (UTC, optional)", expires, "expiresAt"),
    formError(),
    h("button", { type: "submit" }, "Create token"),
  );

  show(
    h(
      "div",
      {},
      h("h1", {}, "Tokens"),
      created ? secretPanel(`Token ${created.token.name}`, created.tokenPlaintext) : null,
      form,
      result,
      list,
    ),
  );
  await load();
}

// ---------- routing ----------

function route() {
  if (!token) return renderSignIn();
  const to = routeOf(location.hash);
  if (to.view === "endpoint") return renderEndpoint(to.id);
  if (to.view === "tokens") return renderTokens();
  return renderEndpoints();
}

window.addEventListener("hashchange", () => {
  if (token && document.getElementById("main")) route();
});

if (token) renderShell();
else renderSignIn();
