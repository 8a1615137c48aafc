// The console's DOM helpers: making elements (text only, never HTML), labelled form fields with a
// place for their errors, and showing an API's problem+json beside the fields it names.

import { mapErrors, pluginDenial } from "./lib.js";

let uid = 0;

/** An element: `props` are attributes (`on...` are listeners), children text or elements. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "value") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled input with a hint and a place for its errors; `name` is the API's field name. */
export function field(label, input, name, hint) {
  const id = nextId("f");
  input.id = id;
  input.dataset.field = name;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  const isCheck = input.type === "checkbox";
  return h(
    "div",
    { class: isCheck ? "field check" : "field" },
    isCheck ? [input, h("label", { for: id }, label)] : [h("label", { for: id }, label), input],
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, "data-error-for": name }),
  );
}

export function formError() {
  return h("div", { class: "form-error", role: "alert" });
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for], .form-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** The elements of `form` whose data attribute `key` is `name` (compared as text: a header's name
 * may hold characters a selector would need escaped). */
function byData(form, key, name) {
  return [...form.querySelectorAll(`[data-${key}]`)].filter((el) => el.getAttribute(`data-${key}`) === name);
}

/**
 * Shows a failed answer on `form`: beside the fields it names, the rest above the button.
 * `itemName(root, index)` names an item of a list field in its message (`line 2`).
 */
export function showProblem(form, problem, known, itemName) {
  clearErrors(form);
  const { fields, general } = mapErrors(problem, known, itemName);
  for (const [name, messages] of Object.entries(fields)) {
    const slot = byData(form, "error-for", name)[0];
    for (const input of byData(form, "field", name)) {
      input.setAttribute("aria-invalid", "true");
      // An error inside a closed section opens it.
      for (let d = input.closest("details"); d; d = d.parentElement?.closest("details")) d.open = true;
    }
    if (slot) {
      slot.textContent = messages
        .map((m) => {
          const denied = pluginDenial(m);
          return denied ? `Denied by plugin ${denied.plugin}: ${denied.reason}` : m;
        })
        .join("; ");
    } else {
      general.push(...messages);
    }
  }
  const box = form.querySelector(".form-error");
  if (box) box.textContent = general.join("; ");
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

/** A table cell with its column's name, shown before the value on narrow screens. */
export function td(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}
