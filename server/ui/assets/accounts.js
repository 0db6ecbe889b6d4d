// The accounts: ListAccountHealth filtered by state, data freshness, error
// code and user, a page at a time, by account id or sorted by time in
// state (the "In state since" header toggles it); an account id searches
// for that one account.
import * as api from "./api.js";
import { h, stateBadge, freshnessBadge, when, short } from "./dom.js";

const STATES = ["CONNECTING", "HEALTHY", "AUTH_FAILED", "DISCONNECTED", "DEGRADED", "REMOVED"];
const FRESHNESS = ["FRESH", "STALE", "REFRESH_DISABLED", "SYNC_FAILED"];
// The filters chosen from a list, by hash parameter: each may be repeated.
const CHOICES = { state: STATES, freshness: FRESHNESS };
const PAGE_SIZE = 50;
// ListAccountHealth's orders by state since (short names of AccountOrder).
const ORDERS = ["state_since_asc", "state_since_desc"];

export async function accounts({ params }) {
  let rows, next = "";
  const id = params.get("account") || "";
  if (id) {
    rows = await one(id);
  } else {
    const q = new URLSearchParams({ pageSize: String(PAGE_SIZE) });
    for (const s of params.getAll("state")) q.append("states", s);
    for (const f of params.getAll("freshness")) q.append("freshness", f);
    if (params.get("code")) q.set("errorCodes", params.get("code"));
    if (params.get("user")) q.set("userId", params.get("user"));
    if (params.get("page")) q.set("pageToken", params.get("page"));
    if (ORDERS.includes(params.get("order"))) q.set("orderBy", params.get("order"));
    const res = await api.get("/v1/accounts/health?" + q);
    rows = res.accounts || [];
    next = res.nextPageToken || "";
  }
  return h("section", {},
    h("h1", {}, "Accounts"),
    filters(params),
    h("div", { class: "panel scroll" }, table(rows, params), pager(params, next)));
}

// one is the account with this id, or none.
async function one(id) {
  try {
    return [(await api.get("/v1/accounts/" + encodeURIComponent(id) + "/health")).accountHealth];
  } catch (err) {
    if (err.status === 404) return [];
    throw err;
  }
}

// choice is the select of a CHOICES filter: any, or one value; several
// chosen at once (a link can) show as one option, "*", that keeps them.
function choice(name, chosen) {
  const words = (v) => v.toLowerCase().replaceAll("_", " ");
  const select = h("select", { name, id: "filter-" + name },
    h("option", { value: "" }, chosen.length > 1 ? chosen.map(words).join(" or ") : "any"),
    CHOICES[name].map((v) => h("option", { value: v, selected: chosen.length === 1 && chosen[0] === v }, words(v))));
  if (chosen.length > 1) select.firstChild.value = "*";
  return select;
}

function filters(params) {
  const field = (label, name, value, extra) => h("label", {}, label, h("input", { name, value: value || "", ...extra }));
  return h("form", { class: "filters", id: "filters", role: "search", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const q = new URLSearchParams();
    for (const name of Object.keys(CHOICES)) {
      const v = f.get(name);
      for (const c of v === "*" ? params.getAll(name) : v ? [v] : []) q.append(name, c);
    }
    for (const k of ["code", "user", "account"]) if (f.get(k).trim()) q.set(k, f.get(k).trim());
    if (params.get("order")) q.set("order", params.get("order"));
    location.hash = "#/accounts" + (q.size ? "?" + q : "");
  } },
  h("label", {}, "State", choice("state", params.getAll("state"))),
  h("label", {}, "Data freshness", choice("freshness", params.getAll("freshness"))),
  field("Error code", "code", params.get("code"), { id: "filter-code", placeholder: "e.g. auth_required" }),
  field("User id", "user", params.get("user"), { id: "filter-user" }),
  field("Account id", "account", params.get("account"), { id: "filter-account", type: "search" }),
  h("button", { type: "submit" }, "Filter"),
  h("a", { href: "#/accounts" }, "Clear"));
}

// sinceHeader is the "In state since" column's header: a link to the same
// filters sorted by it, the longest in their state first, then the other
// way at each click; the first page of each, as tokens are per order.
function sinceHeader(params) {
  const order = params.get("order");
  const q = new URLSearchParams(params);
  q.delete("page");
  q.set("order", order === ORDERS[0] ? ORDERS[1] : ORDERS[0]);
  const sort = { [ORDERS[0]]: "ascending", [ORDERS[1]]: "descending" }[order];
  const arrow = { ascending: " ▲", descending: " ▼" }[sort] || "";
  return h("th", { scope: "col", "aria-sort": sort || null },
    h("a", { href: "#/accounts?" + q, id: "sort-since", title: sort === "ascending" ? "Newest in their state first" : "Longest in their state first" }, "In state since", arrow));
}

function table(rows, params) {
  if (rows.length === 0) return h("p", { class: "muted", id: "no-accounts" }, "No account matches.");
  const col = (c) => h("th", { scope: "col" }, c);
  return h("table", { id: "accounts" },
    h("thead", {}, h("tr", {}, ["Account", "User", "State", "Error code or freshness", "Remedy"].map(col), sinceHeader(params), col("Last event"))),
    h("tbody", {}, rows.map((a) => h("tr", { "data-account": a.accountId },
      h("td", {}, h("a", { href: "#/account/" + encodeURIComponent(a.accountId) }, h("code", {}, a.accountId))),
      h("td", {}, a.userId ? h("a", { href: "#/accounts?user=" + encodeURIComponent(a.userId) }, h("code", {}, a.userId)) : ""),
      h("td", {}, stateBadge(a.state)),
      h("td", {}, errorOrFreshness(a)),
      h("td", {}, short(a.remedy?.action, "REMEDY_ACTION_")),
      h("td", { "data-since": a.stateSince || "" }, when(a.stateSince)),
      h("td", {}, a.lastEventType || "", " ", when(a.lastEventAt))))));
}

// errorOrFreshness is the account's error code or, for a HEALTHY account
// (which has none), its data freshness.
function errorOrFreshness(a) {
  if (a.errorCode) return h("code", {}, a.errorCode);
  return a.freshness ? freshnessBadge(a.freshness.status, a.freshness.failedDatasets) : "";
}

// pager links the first page and the next; page tokens are opaque, so the
// way back is the browser's Back.
function pager(params, next) {
  const at = (token) => {
    const q = new URLSearchParams(params);
    q.delete("page");
    if (token) q.set("page", token);
    return "#/accounts" + (q.size ? "?" + q : "");
  };
  return h("nav", { class: "pager", "aria-label": "Pages" },
    params.get("page") ? h("a", { href: at(""), id: "first-page" }, "First page") : null,
    next ? h("a", { href: at(next), id: "next-page" }, "Next page") : h("span", { class: "muted" }, "Last page"));
}
