// The console's logic that is more than glue, free of the DOM: the API client, paging over the
// API's cursors, mapping problem+json errors to form fields, and the curl equivalent of a call.
// tests/console_test.py imports this module in the browser and checks it there.

/** Where the API token lives: this tab's sessionStorage, nowhere else. */
export const TOKEN_KEY = "hookd.token";

/** Items per page in every list. */
export const PAGE_SIZE = 20;

/**
 * One call to hookd's API: `{status, ok, data, problem}`. `data` is the JSON answer (null for
 * none), `problem` the problem+json of a failure. The token goes only in `Authorization`;
 * `credentials: "omit"` keeps cookies out of it (there are none, so there is nothing to forge).
 */
export async function call(token, method, path, body, fetchFn = fetch) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetchFn(path, init);
  } catch (e) {
    return { status: 0, ok: false, data: null, problem: { title: "hookd did not answer", detail: String(e) } };
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  const ok = resp.status >= 200 && resp.status < 300;
  const problem = ok ? null : data ?? { title: `HTTP ${resp.status}`, detail: text.slice(0, 200) };
  return { status: resp.status, ok, data: ok ? data : null, problem };
}

/**
 * Paging over a list's cursors. The API gives a `nextCursor`; going back needs the cursors of
 * the pages before, kept on a stack.
 */
export class Pager {
  constructor(limit = PAGE_SIZE) {
    this.limit = limit;
    this.cursor = null;
    this.next = null;
    this.before = [];
  }

  /** The query string for the current page. */
  query() {
    const p = new URLSearchParams({ limit: String(this.limit) });
    if (this.cursor) p.set("cursor", this.cursor);
    return `?${p}`;
  }

  /** A page arrived, with the API's `nextCursor`. */
  loaded(nextCursor) {
    this.next = nextCursor ?? null;
  }

  hasNext() {
    return this.next !== null;
  }

  hasPrevious() {
    return this.before.length > 0;
  }

  /** Moves to the next page; false if there is none. */
  forward() {
    if (!this.hasNext()) return false;
    this.before.push(this.cursor);
    this.cursor = this.next;
    this.next = null;
    return true;
  }

  /** Moves to the previous page; false if there is none. */
  back() {
    if (!this.hasPrevious()) return false;
    this.cursor = this.before.pop();
    this.next = null;
    return true;
  }

  /** 1 for the first page. */
  page() {
    return this.before.length + 1;
  }
}

/**
 * Splits a problem+json answer between a form's fields and the rest. `known` lists the form's
 * field names (the API's JSON names); an error on a name `known` lists (`clientCertificate.privateKey`)
 * goes there, else one on `labelMatchers[0]` or `headers.X-Key` belongs to the field it starts
 * with, its message prefixed by the rest of its name, or for a list item by what
 * `itemName(root, index)` calls it (`line 2`). Returns `{fields: {name: [message, ...]},
 * general: [message]}`.
 */
export function mapErrors(problem, known, itemName) {
  const fields = {};
  const general = [];
  const errors = Array.isArray(problem?.errors) ? problem.errors : [];
  for (const e of errors) {
    const field = String(e?.field ?? "");
    const message = String(e?.message ?? "");
    const root = field.split(/[.[]/)[0];
    if (field && known.includes(field)) {
      (fields[field] ??= []).push(message);
    } else if (known.includes(root)) {
      const rest = field.slice(root.length);
      const item = /^\[(\d+)\]$/.exec(rest);
      const name = (item && itemName ? itemName(root, Number(item[1])) : null) ?? rest.replace(/^\./, "");
      (fields[root] ??= []).push(`${name}: ${message}`);
    } else {
      general.push(field ? `${field}: ${message}` : message);
    }
  }
  if (errors.length === 0) {
    general.push(describe(problem));
  }
  return { fields, general };
}

/** One line for a problem: its detail, else its title. */
export function describe(problem) {
  return String(problem?.detail || problem?.title || "The request failed");
}

/** A URL-policy plugin's denial in a field message: `{plugin, reason}`, or null. */
export function pluginDenial(message) {
  const m = /is denied by plugin '([^']+)': ([\s\S]*)$/.exec(String(message));
  return m ? { plugin: m[1], reason: m[2] } : null;
}

/** A shell word: single-quoted, with embedded single quotes closed and reopened. */
export function shellQuote(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}

/**
 * The curl command for a call, the token left as `$TOKEN` (double-quoted, so the shell fills
 * it in; everything else single-quoted).
 */
export function curl(method, path, body, origin) {
  const words = ["curl"];
  if (method !== "GET") words.push("-X", method);
  words.push("-H", '"Authorization: Bearer $TOKEN"');
  if (body !== undefined) {
    words.push("-H", shellQuote("Content-Type: application/json"), "-d", shellQuote(JSON.stringify(body)));
  }
  words.push(shellQuote(origin + path));
  return words.join(" ");
}

/** An RFC 3339 time as hookd writes it, for people: `2026-11-27 10:00:05 UTC`; "" for null. */
export function when(rfc3339) {
  if (!rfc3339) return "";
  return String(rfc3339).replace("T", " ").replace(/Z$/, " UTC");
}

/** An attempt's answer in a few words: the status code, else the error. */
export function answerOf(attempt) {
  if (attempt?.statusCode != null) {
    return attempt.error ? `${attempt.statusCode} (${attempt.error})` : String(attempt.statusCode);
  }
  return String(attempt?.error ?? "");
}

/** A `datetime-local` input's value (read as UTC) as RFC 3339, or null when empty or invalid. */
export function utcFromInput(value) {
  if (!value) return null;
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?$/.exec(value);
  return m ? `${m[1]}T${m[2]}${m[3] ?? ":00"}Z` : null;
}

/** Case-insensitive match of a filter text against an endpoint's name, URL or id. */
export function matchesFilter(endpoint, text) {
  const t = String(text ?? "").trim().toLowerCase();
  if (!t) return true;
  return [endpoint?.name, endpoint?.url, endpoint?.id].some((v) => String(v ?? "").toLowerCase().includes(t));
}

/** The view a location hash names: {view: "endpoint", id}, {view: "tokens"} or
 * {view: "endpoints"}. A hash that does not decode (`#/endpoints/%E0%A4%A`) names the list,
 * never an exception. */
export function routeOf(hash) {
  const m = /^#\/endpoints\/(.+)$/.exec(hash || "");
  if (m) {
    try {
      return { view: "endpoint", id: decodeURIComponent(m[1]) };
    } catch {
      return { view: "endpoints" };
    }
  }
  if (hash === "#/tokens") return { view: "tokens" };
  return { view: "endpoints" };
}

/**
 * The items of a one-per-line text box (event types, label matchers): each line trimmed, blank
 * lines left out. `lines[i]` is the line number (from 1) of `items[i]`, to name it in an error.
 */
export function linesOf(text) {
  const items = [];
  const lines = [];
  String(text ?? "").split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t) {
      items.push(t);
      lines.push(i + 1);
    }
  });
  return { items, lines };
}

/** Whether two lists of strings are the same, in the same order. */
export function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A transformer plugin's format, as the API takes it: `plugin:` and 1-64 of A-Z a-z 0-9 _ -. */
export const PLUGIN_FORMAT = /^plugin:[A-Za-z0-9_-]{1,64}$/;

/**
 * The `headers` a form sends, from its rows `[{name, value, stored}]` (`stored`: the name of the
 * stored header a row began as, else null). The API shows stored values only masked and a PATCH
 * replaces every header, so an unchanged table sends nothing (`headers` undefined: never the masked
 * values back) and a changed one needs the value of each stored header it keeps typed again.
 * Rows with neither name nor value are left out (removing every row sends `{}`). Returns
 * `{headers, errors: [{row, message}]}` (`row`: the index in `rows`).
 */
export function headersToSend(rows, storedCount = 0) {
  const live = rows.map((r, row) => ({ ...r, row, name: String(r.name ?? "").trim(), value: String(r.value ?? "") }))
    .filter((r) => r.name || r.value);
  const unchanged = live.length === storedCount && live.every((r) => r.stored && r.name === r.stored && r.value === "");
  if (unchanged) return { headers: undefined, errors: [] };
  const headers = {};
  const errors = [];
  const seen = new Set();
  for (const r of live) {
    const lower = r.name.toLowerCase();
    if (!r.name) {
      errors.push({ row: r.row, message: "needs a name" });
    } else if (seen.has(lower)) {
      errors.push({ row: r.row, message: `${r.name} is given twice (header names ignore case)` });
    } else if (r.stored && r.value === "") {
      errors.push({ row: r.row, message: `type the value of ${r.name} again: saving a change replaces every header, and hookd shows stored values only masked` });
    } else {
      headers[r.name] = r.value;
    }
    seen.add(lower);
  }
  return { headers, errors };
}
