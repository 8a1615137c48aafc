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
 * field names (the API's JSON names); an error on `labelMatchers[0]` or `headers.X-Key` belongs
 * to the field it starts with. Returns `{fields: {name: [message, ...]}, general: [message]}`.
 */
export function mapErrors(problem, known) {
  const fields = {};
  const general = [];
  const errors = Array.isArray(problem?.errors) ? problem.errors : [];
  for (const e of errors) {
    const field = String(e?.field ?? "");
    const message = String(e?.message ?? "");
    const root = field.split(/[.[]/)[0];
    if (known.includes(root)) {
      (fields[root] ??= []).push(root === field ? message : `${field.slice(root.length).replace(/^\./, "")}: ${message}`);
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
