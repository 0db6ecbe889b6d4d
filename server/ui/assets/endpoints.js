// The outbound webhook endpoints: each one's health from ListEndpoints
// (its backlog) and its last delivered message, and per endpoint its
// recent messages and attempts, with the actions NotificationService has.
import * as api from "./api.js";
import { h, when, exact, short, fmt, errorBox } from "./dom.js";

const RECENT = 20;
const DELIVERED = "MESSAGE_STATUS_DELIVERED";
const EXHAUSTED = "MESSAGE_STATUS_EXHAUSTED";

const base = (id) => "/v1/endpoints/" + encodeURIComponent(id);

// lastDelivered is the endpoint's newest delivered message, or none.
async function lastDelivered(id) {
  const res = await api.get(base(id) + "/messages?pageSize=1&statuses=" + DELIVERED);
  return (res.messages || [])[0];
}

// health says in a word how the endpoint is doing; its data-health is
// what tests read.
function health(e) {
  if (e.disabled) return h("span", { class: "badge s-removed", "data-health": "disabled", title: e.disabledReason || "" }, "disabled");
  if (e.failingSince) return h("span", { class: "badge s-auth_failed", "data-health": "failing" }, "failing");
  return h("span", { class: "badge s-healthy", "data-health": "delivering" }, "delivering");
}

function status(e) {
  if (e.disabled) return [health(e), " ", e.disabledReason || ""];
  if (e.failingSince) return [health(e), " since ", when(e.failingSince)];
  return health(e);
}

export async function endpoints() {
  const list = (await api.get("/v1/endpoints")).endpoints || [];
  const delivered = await Promise.all(list.map((e) => lastDelivered(e.id)));
  return h("section", {},
    h("h1", {}, "Outbound endpoints"),
    h("p", { class: "muted" }, "Receivers of the signed webhooks (see docs/notifications.md); add one with ",
      h("code", {}, "accounthealth endpoints add URL"), "."),
    h("div", { class: "panel scroll" }, list.length === 0 ? h("p", { class: "muted", id: "no-endpoints" }, "No endpoint yet.") :
      h("table", { id: "endpoints" },
        h("thead", {}, h("tr", {}, ["Endpoint", "URL", "Health", "Last delivered", "Pending", "Retrying", "Dead letters", "Oldest pending"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, list.map((e, i) => {
          const b = e.backlog || {};
          return h("tr", { "data-endpoint": e.id },
            h("td", {}, h("a", { href: "#/endpoint/" + encodeURIComponent(e.id) }, h("code", {}, e.id)), e.description ? [" ", e.description] : ""),
            h("td", {}, h("code", {}, e.url)),
            h("td", {}, status(e)),
            h("td", {}, when(delivered[i]?.createdAt)),
            h("td", { class: "num", "data-n": "pending" }, fmt(b.pending)),
            h("td", { class: "num", "data-n": "retrying" }, fmt(b.retrying)),
            h("td", { class: "num", "data-n": "dead" }, fmt(b.deadLetters)),
            h("td", {}, b.oldestPendingAt ? when(b.oldestPendingAt) : "—"));
        })))));
}

// done is what the last action did, shown once the page is drawn again.
let done = "";

export async function endpoint({ id }) {
  const [{ endpoint: e }, msgs, atts] = await Promise.all([api.get(base(id)),
    api.get(base(id) + "/messages?pageSize=" + RECENT), api.get(base(id) + "/attempts?pageSize=" + RECENT)]);
  const out = h("div", { id: "action-result", "aria-live": "polite" }, done ? h("div", { class: "result" }, done) : null);
  done = "";
  const run = (fn) => async () => {
    try {
      done = await fn();
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) {
      if (err instanceof api.Unauthenticated) return location.reload();
      out.replaceChildren(errorBox(err));
    }
  };
  const toggle = e.disabled ?
    h("button", { type: "button", id: "enable", onclick: run(async () => { await api.call("POST", base(id) + ":enable", {}); return "Enabled: pending messages go out again."; }) }, "Enable") :
    h("button", { type: "button", class: "danger", id: "disable", onclick: run(async () => { await api.call("POST", base(id) + ":disable", {}); return "Disabled: messages wait until it is enabled."; }) }, "Disable");
  const retry = (m) => run(async () => {
    await api.call("POST", base(id) + "/messages/" + encodeURIComponent(m.id) + ":retry", {});
    return "Message " + m.id + " queued again.";
  });
  return h("section", {},
    h("h1", {}, "Endpoint ", h("code", {}, e.id)),
    h("div", { class: "panel" }, facts(e), h("div", { class: "actions" }, toggle), out),
    h("section", { class: "panel" }, h("h2", {}, "Recent messages"),
      h("p", { class: "muted" }, "Newest first, the last " + RECENT + "; a dead letter (out of attempts) can be sent again."),
      h("div", { class: "scroll" }, messages(msgs.messages || [], retry))),
    h("section", { class: "panel" }, h("h2", {}, "Recent attempts"),
      h("p", { class: "muted" }, "Newest first, the last " + RECENT + "."),
      h("div", { class: "scroll" }, attempts(atts.attempts || []))));
}

function facts(e) {
  const b = e.backlog || {};
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  return h("dl", { class: "facts", id: "endpoint-facts" },
    row("URL", h("code", {}, e.url)),
    row("Description", e.description || "—"),
    row("Health", status(e)),
    row("Sends", h("span", { id: "endpoint-filter" }, filterText(e.filter))),
    row("Limits", `${fmt(e.concurrency)} in flight, ` + (e.rateLimit ? `at most ${e.rateLimit} messages/s` : "no rate limit")),
    row("Backlog", `${fmt(b.pending)} pending (${fmt(b.retrying)} retrying), ${fmt(b.deadLetters)} dead letters`),
    row("Oldest pending", b.oldestPendingAt ? [exact(b.oldestPendingAt), " (", when(b.oldestPendingAt), ")"] : "none"),
    row("Created", exact(e.createdAt)));
}

// filterText says which transitions the endpoint is sent, as its
// filter (StreamDisconnections') selects them.
function filterText(f = {}) {
  const list = (xs) => (xs || []).join(", ");
  const parts = [f.kinds?.length ? "kinds " + f.kinds.map((k) => short(k, "TRANSITION_KIND_")).join(", ") : "every kind but the opt-in ones"];
  if (f.errorCodes?.length) parts.push("error codes " + list(f.errorCodes));
  if (f.userIds?.length) parts.push("users " + list(f.userIds));
  const optIn = [f.includeRecoveries && "recoveries", f.includeItemEvents && "item events", f.includeFreshnessEvents && "freshness events"].filter(Boolean);
  parts.push(optIn.length ? "with " + optIn.join(", ") : "no recoveries");
  return parts.join("; ");
}

function messages(ms, retry) {
  if (ms.length === 0) return h("p", { class: "muted", id: "no-messages" }, "No message yet.");
  return h("table", { id: "messages" },
    h("thead", {}, h("tr", {}, ["Queued", "Message", "Type", "Account", "Status", "Attempts", "Last error", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ms.map((m) => h("tr", { "data-message": m.id, "data-status": short(m.status, "MESSAGE_STATUS_") },
      h("td", {}, when(m.createdAt)),
      h("td", {}, h("code", {}, m.id)),
      h("td", {}, m.type),
      h("td", {}, m.accountId ? h("a", { href: "#/account/" + encodeURIComponent(m.accountId) }, h("code", {}, m.accountId)) : ""),
      h("td", {}, short(m.status, "MESSAGE_STATUS_")),
      h("td", { class: "num" }, String(m.attempts || 0)),
      h("td", {}, m.lastError || ""),
      h("td", {}, m.status === EXHAUSTED ? h("button", { type: "button", class: "secondary", onclick: retry(m) }, "Retry") : "")))));
}

// latency turns a JSON Duration ("0.012s") into milliseconds.
const latency = (d) => (d ? Math.round(parseFloat(d) * 1000) + " ms" : "");

function attempts(as) {
  if (as.length === 0) return h("p", { class: "muted", id: "no-attempts" }, "No attempt yet.");
  return h("table", { id: "attempts" },
    h("thead", {}, h("tr", {}, ["Time", "Message", "#", "Status code", "Latency", "Error"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, as.map((a) => h("tr", { "data-message": a.messageId, "data-code": String(a.statusCode || 0) },
      h("td", {}, when(a.at)),
      h("td", {}, h("code", {}, a.messageId)),
      h("td", { class: "num" }, String(a.attempt || 0)),
      h("td", { class: "num" }, a.statusCode ? String(a.statusCode) : "none"),
      h("td", { class: "num" }, latency(a.latency)),
      h("td", {}, a.error || "")))));
}
