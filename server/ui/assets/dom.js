// Building the page: elements are made with their text set as text, never
// parsed as HTML, so nothing a webhook carried can inject markup.

// h makes an element: attrs are attributes (on* keys: listeners), children
// strings or nodes (null and false skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// short turns an enum value into words: HEALTH_STATE_AUTH_FAILED -> auth failed.
export function short(value, prefix) {
  return (value || "").replace(prefix, "").toLowerCase().replaceAll("_", " ");
}

// fromState names the state a transition left; none for a new account.
export function fromState(s) {
  return !s || s.endsWith("UNSPECIFIED") ? "new" : short(s, "HEALTH_STATE_");
}

export const stateKey = (s) => (s || "").replace("HEALTH_STATE_", "").toLowerCase();
export const kindKey = (k) => (k || "").replace("TRANSITION_KIND_", "").toLowerCase();
export const freshnessKey = (f) => (f || "").replace("FRESHNESS_STATUS_", "").toLowerCase();

export function stateBadge(state) {
  return h("span", { class: "badge s-" + stateKey(state), "data-state": stateKey(state) }, short(state, "HEALTH_STATE_") || "unknown");
}

export function kindBadge(kind) {
  return h("span", { class: "badge k-" + kindKey(kind) }, short(kind, "TRANSITION_KIND_"));
}

// freshnessText is a HEALTHY account's data freshness in words, naming
// the datasets of a sync failure: "sync failed (paystubs)".
export function freshnessText(status, failed) {
  const datasets = status === "FRESHNESS_STATUS_SYNC_FAILED" && failed?.length ? " (" + failed.join(", ") + ")" : "";
  return short(status, "FRESHNESS_STATUS_") + datasets;
}

export function freshnessBadge(status, failed) {
  return h("span", { class: "badge f-" + freshnessKey(status), "data-freshness": freshnessKey(status) }, freshnessText(status, failed));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// when shows a time as "5 min ago", the exact time on hover.
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  const t = new Date(iso);
  return h("time", { datetime: iso, title: dateTime.format(t) }, ago(t));
}

export function ago(t) {
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}

export function exact(iso) {
  return iso ? dateTime.format(new Date(iso)) : "never";
}

export const num = (v) => Number(v || 0);
export const fmt = (n) => num(n).toLocaleString();

export function errorBox(err) {
  return h("p", { class: "result error", role: "alert" }, err.message || String(err));
}
