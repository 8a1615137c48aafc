// An endpoint's format and routing and shaping options, as the create and edit forms show them:
// what the form sends (on an edit only what changed, never a masked value back) and where the
// API's errors on them go.

import { field, h, nextId, td } from "./dom.js";
import { PLUGIN_FORMAT, headersToSend, linesOf, sameList, when } from "./lib.js";

// The endpoint formats (the server's list; a test holds them equal).
export const FORMATS = ["standard-webhooks", "slack", "discord", "google-chat", "mattermost", "pagerduty", "teams"];
// The format select's value for "Other (plugin:…)": a transformer plugin typed in a text box.
const OTHER_FORMAT = "plugin";
const SEVERITIES = ["critical", "error", "warning", "info"];
export const ALGORITHMS = ["hmac-sha256", "ed25519"];

/**
 * The format: a select of the built-in formats and "Other (plugin:…)", which shows a text box for
 * a transformer plugin's `plugin:<name>` (the API cannot list the configuration's transformers).
 * Both report to one error slot, under the text box.
 */
function formatField(current, auto) {
  const isPlugin = String(current ?? "").startsWith("plugin:");
  const options = auto ? [h("option", { value: "" }, "From the URL")] : [];
  for (const f of FORMATS) options.push(h("option", { value: f, selected: f === current }, f));
  options.push(h("option", { value: OTHER_FORMAT, selected: isPlugin }, "Other (plugin:\u2026)"));
  const select = h("select", {}, ...options);
  const plugin = h("input", {
    type: "text", autocomplete: "off", spellcheck: "false", maxlength: "71", placeholder: "plugin:name",
    value: isPlugin ? current : "",
  });
  const id = nextId("f");
  const [hintId, pluginHintId, errorId] = [`${id}-hint`, `${id}-plugin-hint`, `${id}-error`];
  select.id = id;
  plugin.id = `${id}-plugin`;
  select.dataset.field = "format";
  plugin.dataset.field = "format";
  select.setAttribute("aria-describedby", `${hintId} ${errorId}`);
  plugin.setAttribute("aria-describedby", `${pluginHintId} ${errorId}`);
  const pluginBox = h(
    "div",
    { class: "plugin-format", hidden: !isPlugin },
    h("label", { for: plugin.id }, "Plugin format"),
    plugin,
    h("p", { class: "hint", id: pluginHintId }, "A transformer plugin of hookd's configuration ([[transformers]]): plugin: and its name, such as plugin:ntfy."),
  );
  select.addEventListener("change", () => {
    pluginBox.hidden = select.value !== OTHER_FORMAT;
  });
  return {
    select,
    node: h(
      "div",
      { class: "field" },
      h("label", { for: id }, "Format"),
      select,
      h("p", { class: "hint", id: hintId }, "The shape of what the receiver gets: the Standard Webhooks envelope, a chat or incident tool's message, or a transformer plugin's."),
      pluginBox,
      h("p", { class: "field-error", id: errorId, "data-error-for": "format" }),
    ),
    /** The format chosen: a name, `plugin:<name>`, or "" for "From the URL". */
    value: () => (select.value === OTHER_FORMAT ? plugin.value.trim() : select.value),
    /** Why the chosen format cannot be sent, if it cannot (checked here, before a request). */
    problem: () =>
      select.value === OTHER_FORMAT && !PLUGIN_FORMAT.test(plugin.value.trim())
        ? "must be plugin: and a transformer plugin's name: 1-64 letters, digits, _ or -"
        : null,
  };
}

/** A group of fields under a legend. */
function fieldset(legend, ...children) {
  return h("fieldset", { class: "group" }, h("legend", {}, legend), ...children);
}

/** A place for the errors on `name` that no single input of a group holds. */
function groupError(name) {
  return h("p", { class: "field-error", "data-error-for": name });
}

/**
 * The format and the routing and shaping options, for the create form (`e` null) or the edit
 * form of endpoint `e`: format (with PagerDuty's routing key and severity), event types, label
 * matchers, headers, rate limit and client certificate. `collect(body)` adds to `body` what the
 * form sends (on an edit only what changed: a masked value is never sent back) and returns the
 * errors found before any request, `[{field, message}]`; `known()` lists the fields whose errors
 * show beside an input; `itemName` names an item of a list field by its line.
 */
export function optionInputs(e) {
  const creating = !e;
  const format = formatField(e?.format ?? "", creating);
  const routingKey = h("input", {
    type: "text", autocomplete: "off", spellcheck: "false", maxlength: "128",
    placeholder: e?.formatOptions?.routingKey || "",
  });
  const storedSeverity = e?.formatOptions?.severity ?? "";
  const severity = h(
    "select",
    {},
    h("option", { value: "" }, "Default (error)"),
    SEVERITIES.map((s) => h("option", { value: s, selected: s === storedSeverity }, s)),
  );

  const types = h("textarea", { rows: "3", spellcheck: "false", autocomplete: "off", class: "code", value: (e?.filterTypes ?? []).join("\n") });
  const matchers = h("textarea", { rows: "3", spellcheck: "false", autocomplete: "off", class: "code", value: (e?.labelMatchers ?? []).join("\n") });
  const lines = { filterTypes: [], labelMatchers: [] };

  // Headers: a row per header; a stored one shows its masked value as the placeholder.
  const headersHintId = nextId("headers-hint");
  const rows = [];
  const headerBody = h("tbody", {});
  const headerTable = h(
    "table",
    { class: "headers", "aria-label": "Custom request headers" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Remove")))),
    headerBody,
  );
  const addHeader = h("button", { type: "button", class: "secondary" }, "Add a header");
  const renumber = () => {
    headerTable.hidden = rows.length === 0;
    rows.forEach((r, i) => {
      r.name.setAttribute("aria-label", `Header ${i + 1} name`);
      r.value.setAttribute("aria-label", `Header ${i + 1} value`);
      r.remove.setAttribute("aria-label", `Remove header ${i + 1}`);
    });
  };
  const addRow = (name = "", mask = null) => {
    const key = nextId("header");
    const row = { key, stored: mask === null ? null : name };
    row.name = h("input", { type: "text", autocomplete: "off", spellcheck: "false", maxlength: "100", value: name });
    row.value = h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: mask ?? "" });
    row.slot = h("p", { class: "field-error", id: `${key}-error`, "data-error-for": key });
    for (const input of [row.name, row.value]) {
      input.dataset.field = key;
      input.setAttribute("aria-describedby", `${headersHintId} ${key}-error`);
    }
    row.remove = h("button", {
      type: "button",
      class: "secondary",
      onclick: () => {
        rows.splice(rows.indexOf(row), 1);
        row.tr.remove();
        renumber();
        addHeader.focus();
      },
    }, "Remove");
    row.tr = h(
      "tr",
      {},
      td("Name", row.name),
      td("Value", row.value, row.slot),
      h("td", { class: "row-action" }, row.remove),
    );
    rows.push(row);
    headerBody.append(row.tr);
    renumber();
    return row;
  };
  addHeader.addEventListener("click", () => addRow().name.focus());
  for (const [name, mask] of Object.entries(e?.headers ?? {})) addRow(name, mask);
  renumber();

  const rate = h("input", { type: "number", min: "1", max: "10000", step: "1", inputmode: "numeric", value: e?.rateLimit ?? "" });
  const algorithm = creating
    ? h("select", {}, ALGORITHMS.map((a) => h("option", { value: a }, a === "hmac-sha256" ? "HMAC-SHA256 (default)" : "Ed25519")))
    : null;
  const cert = h("textarea", { rows: "4", spellcheck: "false", autocomplete: "off", class: "code", placeholder: "-----BEGIN CERTIFICATE-----" });
  const key = h("textarea", { rows: "4", spellcheck: "false", autocomplete: "off", class: "code", placeholder: "-----BEGIN PRIVATE KEY-----" });
  const removeCert = e?.clientCertificate ? h("input", { type: "checkbox" }) : null;
  removeCert?.addEventListener("change", () => {
    cert.disabled = removeCert.checked;
    key.disabled = removeCert.checked;
  });

  // PagerDuty's options, shown while the format is pagerduty (or, on a create, follows the URL).
  const pagerduty = h(
    "div",
    {},
    field("PagerDuty routing key", routingKey, "formatOptions.routingKey", creating
      ? "For the pagerduty format: the integration key of an Events API v2 integration. Sealed at rest."
      : "A new key replaces the stored one (shown masked)."),
    field("PagerDuty severity", severity, "formatOptions.severity", "For the pagerduty format: the severity of alerts that carry none PagerDuty knows."),
    groupError("formatOptions"),
  );
  const showPagerduty = () => {
    pagerduty.hidden = !["pagerduty", ""].includes(format.select.value);
  };
  format.select.addEventListener("change", showPagerduty);
  showPagerduty();

  const nodes = [
    format.node,
    pagerduty,
    fieldset(
      "Routing",
      field("Event types", types, "filterTypes", "One per line: exact (deploy) or a prefix ending in .* (alertmanager.*). Empty: every type."),
      field("Label matchers", matchers, "labelMatchers", "One per line, in Alertmanager's syntax, all of which must hold: severity=~\"critical|warning\", env!=\"staging\". Empty: every alert."),
    ),
    fieldset(
      "Headers",
      h("p", { class: "hint", id: headersHintId }, creating
        ? "Sent with every delivery (up to 20). Values are sealed at rest and shown masked afterwards."
        : "Values are shown masked. Saving a change to the headers replaces them all: type the value of each header you keep again. Left as they are, they stay."),
      headerTable,
      addHeader,
      groupError("headers"),
    ),
    fieldset(
      "Delivery",
      field("Rate limit (deliveries per second)", rate, "rateLimit", "1-10,000. Empty: no limit."),
      algorithm ? field("Signing algorithm", algorithm, "signingAlgorithm", "Ed25519 lets receivers verify with a public key; the secret must then be empty or whsk_ + base64.") : null,
    ),
    fieldset(
      "Client certificate (mTLS)",
      e?.clientCertificate ? h("p", { class: "readonly" }, `Current: ${describeCertificate(e.clientCertificate)}.`) : null,
      field("Certificate chain (PEM, leaf first)", cert, "clientCertificate.certificate", creating
        ? "Presented when a receiver asks for a client certificate."
        : "A new certificate and key replace the current ones."),
      field("Private key (PEM)", key, "clientCertificate.privateKey", "PKCS#8, PKCS#1 RSA or SEC1 EC. Sealed at rest, never shown."),
      removeCert ? field("Remove the client certificate", removeCert, "clientCertificate") : groupError("clientCertificate"),
    ),
  ];

  const known = () => [
    "format", "formatOptions", "formatOptions.routingKey", "formatOptions.severity", "filterTypes", "labelMatchers",
    "headers", "rateLimit", "signingAlgorithm", "clientCertificate", "clientCertificate.certificate",
    "clientCertificate.privateKey", ...rows.map((r) => r.key),
  ];

  const itemName = (root, index) => (lines[root]?.[index] ? `line ${lines[root][index]}` : null);

  function collect(body) {
    const errors = [];
    // Format, and PagerDuty's options: a change replaces both, and the stored key is masked.
    const fmt = format.value();
    const formatProblem = format.problem();
    if (formatProblem) errors.push({ field: "format", message: formatProblem });
    else if (creating ? fmt : fmt !== e.format) body.format = fmt;
    // PagerDuty's options go only with that format (an edit away from it drops the stored ones).
    if (!pagerduty.hidden) {
      if (routingKey.value || (creating && severity.value)) {
        body.formatOptions = { routingKey: routingKey.value || undefined, severity: severity.value || undefined };
      } else if (!creating && severity.value !== storedSeverity) {
        errors.push({ field: "formatOptions.routingKey", message: "type the routing key again to change the severity: a change replaces both, and hookd shows the stored key only masked" });
      }
    }
    // Event types and label matchers: one per line.
    for (const [name, box, stored] of [["filterTypes", types, e?.filterTypes], ["labelMatchers", matchers, e?.labelMatchers]]) {
      const { items, lines: at } = linesOf(box.value);
      lines[name] = at;
      if (creating ? items.length : !sameList(items, stored ?? [])) body[name] = items;
    }
    // Headers: only when the table changed.
    const sent = headersToSend(rows.map((r) => ({ name: r.name.value, value: r.value.value, stored: r.stored })), Object.keys(e?.headers ?? {}).length);
    for (const { row, message } of sent.errors) errors.push({ field: rows[row].key, message });
    if (sent.headers) body.headers = sent.headers;
    // Server errors name a header as written: they go to its row.
    rows.forEach((r) => r.name.setAttribute("data-header", `headers.${r.name.value.trim()}`));
    // Rate limit: a whole number; emptied on an edit, null removes it.
    if (rate.validity.badInput) {
      errors.push({ field: "rateLimit", message: "must be a whole number of deliveries per second, 1-10000" });
    } else if (rate.value === "") {
      if (!creating && e.rateLimit != null) body.rateLimit = null;
    } else if (creating || Number(rate.value) !== e.rateLimit) {
      body.rateLimit = Number(rate.value);
    }
    if (algorithm && algorithm.value !== "hmac-sha256") body.signingAlgorithm = algorithm.value;
    // Client certificate: both PEMs (the API says which is missing), or null to remove it.
    if (removeCert?.checked) body.clientCertificate = null;
    else if (cert.value.trim() || key.value.trim()) body.clientCertificate = { certificate: cert.value, privateKey: key.value };
    return errors;
  }

  /** The API's errors with a header's name (`headers.X-Key`) renamed to that header's row. */
  function toRows(problem) {
    if (!Array.isArray(problem?.errors)) return problem;
    const errors = problem.errors.map((err) => {
      const row = rows.find((r) => r.name.getAttribute("data-header") === err?.field);
      return row ? { ...err, field: row.key } : err;
    });
    return { ...problem, errors };
  }

  return { nodes, known, itemName, collect, toRows };
}

/** A client certificate as the API shows it, in a line. */
export function describeCertificate(c) {
  const n = c.chainLength === 1 ? "1 certificate" : `${c.chainLength} certificates`;
  return `SHA-256 ${c.fingerprintSha256}, expires ${c.notAfter ? when(c.notAfter) : "(unknown)"}, ${n}`;
}
