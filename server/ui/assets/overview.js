// The overview: counts by state, data freshness and error code
// (GetHealthSummary) and the chart of transitions over time (CountTransitions).
import * as api from "./api.js";
import { h, fmt, num, stateKey, freshnessKey, short } from "./dom.js";
import { buckets, chart, legend } from "./chart.js";

// Accounts whose user must act in Link.
const ATTENTION = ["HEALTH_STATE_AUTH_FAILED", "HEALTH_STATE_DISCONNECTED"];
const HOUR = 3600e3, DAY = 24 * HOUR;

// windows of the chart: 24 hourly buckets ending with the current hour,
// 30 daily (UTC) buckets ending with today.
const WINDOWS = {
  day: { name: "Last 24 hours", width: HOUR, n: 24, align: HOUR,
    label: (t, axis) => axis ? t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : t.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }),
    tick: (i) => i % 4 === 0 },
  month: { name: "Last 30 days", width: DAY, n: 30, align: DAY,
    label: (t, axis) => t.toLocaleDateString([], axis ? { month: "numeric", day: "numeric", timeZone: "UTC" } : { dateStyle: "medium", timeZone: "UTC" }),
    tick: (i) => i % 5 === 0 },
};

async function transitions(w) {
  const end = new Date(Math.floor(Date.now() / w.align) * w.align + w.align);
  const start = new Date(end.getTime() - w.n * w.width);
  const q = new URLSearchParams({ startTime: start.toISOString(), endTime: end.toISOString(), bucketWidth: w.width / 1000 + "s" });
  const res = await api.get("/v1/transitions:count?" + q);
  return buckets(res.counts, start, w.width, w.n);
}

export async function overview() {
  const [sum, day, month] = await Promise.all([api.get("/v1/health/summary"), transitions(WINDOWS.day), transitions(WINDOWS.month)]);
  const byState = Object.fromEntries((sum.byState || []).map((s) => [s.state, num(s.count)]));
  const attention = ATTENTION.reduce((n, s) => n + (byState[s] || 0), 0);
  const cards = h("div", { class: "cards" },
    h("a", { class: "card", href: "#/accounts", "data-count": "total" }, h("span", { class: "n" }, fmt(sum.total)), h("span", { class: "label" }, "accounts")),
    h("a", { class: "card attention", href: "#/accounts?state=AUTH_FAILED&state=DISCONNECTED", "data-count": "attention" },
      h("span", { class: "n" }, fmt(attention)), h("span", { class: "label" }, "need the user to act")),
    (sum.byState || []).map((s) => h("a", { class: "card", href: "#/accounts?state=" + stateKey(s.state).toUpperCase(), "data-count": stateKey(s.state) },
      h("span", { class: "n" }, fmt(s.count)), h("span", { class: "label" }, short(s.state, "HEALTH_STATE_")))));
  return h("section", {},
    h("h1", {}, "Overview"),
    cards,
    freshnessCards(sum.byFreshness || []),
    h("div", { class: "grid2" }, chartPanel({ day, month }), codesPanel(sum.byErrorCode || [])));
}

// freshnessCards count HEALTHY accounts by data freshness; a problem that
// some account has stands out, as it may want the provider or an admin.
function freshnessCards(counts) {
  return h("section", { "aria-labelledby": "freshness-heading" },
    h("h2", { id: "freshness-heading" }, "Healthy accounts by data freshness"),
    h("div", { class: "cards" }, counts.map((c) => h("a", {
      class: c.status !== "FRESHNESS_STATUS_FRESH" && num(c.count) > 0 ? "card warn" : "card",
      href: "#/accounts?freshness=" + freshnessKey(c.status).toUpperCase(), "data-freshness": freshnessKey(c.status) },
    h("span", { class: "n" }, fmt(c.count)), h("span", { class: "label" }, short(c.status, "FRESHNESS_STATUS_"))))));
}

function chartPanel(data) {
  const detail = h("p", { class: "muted", id: "chart-detail", "aria-live": "polite" }, "Hover over or focus a bar for its numbers.");
  const holder = h("div", { class: "chart", id: "chart" });
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": "Window" });
  const show = (key) => {
    const w = WINDOWS[key];
    holder.replaceChildren(chart(data[key], w.label, w.tick, detail));
    holder.dataset.window = key;
    for (const b of tabs.children) b.setAttribute("aria-pressed", String(b.dataset.window === key));
  };
  for (const key of Object.keys(WINDOWS)) {
    tabs.append(h("button", { type: "button", "data-window": key, onclick: () => show(key) }, WINDOWS[key].name));
  }
  show("day");
  return h("section", { class: "panel" }, h("h2", {}, "Disconnections and recoveries"), tabs, legend(), holder, detail);
}

function codesPanel(codes) {
  const top = [...codes].sort((a, b) => num(b.count) - num(a.count)).slice(0, 10);
  return h("section", { class: "panel" },
    h("h2", {}, "Top error codes"),
    top.length === 0 ? h("p", { class: "muted" }, "No account has an error code.") :
      h("table", { id: "top-codes" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Code"), h("th", { scope: "col", class: "num" }, "Accounts"))),
        h("tbody", {}, top.map((c) => h("tr", {},
          h("td", {}, h("a", { href: "#/accounts?code=" + encodeURIComponent(c.errorCode) }, h("code", {}, c.errorCode))),
          h("td", { class: "num", "data-code": c.errorCode }, fmt(c.count)))))));
}
