// One account: its health, what to do, its timeline, and the actions the
// API offers on it.
import * as api from "./api.js";
import { h, stateBadge, kindBadge, freshnessBadge, freshnessText, when, exact, short, fromState, errorBox } from "./dom.js";

const TIMELINE_PAGE = 50;

// done is what the last action did, shown once the page is drawn again
// with the account as the action left it.
let done = "";

export async function account({ id }) {
  const path = "/v1/accounts/" + encodeURIComponent(id);
  const [{ accountHealth: a }, first] = await Promise.all([api.get(path + "/health"), api.get(path + "/events?pageSize=" + TIMELINE_PAGE)]);
  const redraw = (message) => {
    done = message;
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  const result = done ? h("div", { class: "result" }, done) : null;
  done = "";
  return h("section", {},
    h("h1", {}, "Account ", h("code", {}, a.accountId)),
    h("div", { class: "panel" },
      h("p", { class: "remedy" }, stateBadge(a.state), " ", h("span", { id: "remedy" }, a.remedy?.message || "")),
      facts(a),
      actions(path, a, redraw, result),
      snapshot(a)),
    timeline(path, first));
}

function facts(a) {
  const link = a.remedy?.link;
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  return h("dl", { class: "facts", id: "facts" },
    row("User", a.userId ? h("a", { href: "#/accounts?user=" + encodeURIComponent(a.userId) }, h("code", {}, a.userId)) : "—"),
    row("State since", h("span", {}, exact(a.stateSince), " (", when(a.stateSince), ")")),
    row("Error", a.errorCode ? [h("code", {}, a.errorCode), " ", a.errorMessage || ""] : "none"),
    a.freshness ? row("Data freshness", freshness(a.freshness)) : null,
    row("Remedy", short(a.remedy?.action, "REMEDY_ACTION_")),
    row("Link parameters", link ? h("code", { id: "link-params" }, JSON.stringify({ userId: link.userId, accountId: link.accountId || undefined })) : "no Link session needed"),
    row("Ever connected", a.everConnected ? "yes" : "no"),
    row("Failures in a row", String(a.consecutiveFailures || 0)),
    row("Last event", [a.lastEventType || "", " ", when(a.lastEventAt)]),
    row("Account object", a.unconfirmed ? "changed since last seen: unconfirmed until fetched" : a.confirmedAt ? ["seen ", when(a.confirmedAt)] : "never seen"));
}

// freshness tells a HEALTHY account's data freshness: since when, the
// datasets that failed (whatever the status names first), the provider's
// last scan and the service's sentence.
function freshness(f) {
  const failed = f.failedDatasets || [];
  return h("span", { id: "freshness" },
    freshnessBadge(f.status), f.since ? [" since ", exact(f.since), " (", when(f.since), ")"] : "",
    failed.length ? [h("br"), "Failed to sync: ", h("code", {}, failed.join(", "))] : null,
    h("br"), "Last scan: ", when(f.scannedAt),
    f.message ? [h("br"), f.message] : null);
}

function snapshot(a) {
  if (!a.lastSnapshot) return null;
  return h("details", { id: "snapshot" },
    h("summary", {}, "Last account object (", exact(a.lastSnapshotAt), ")"),
    h("pre", {}, JSON.stringify(a.lastSnapshot, null, 2)));
}

// actions offers what the API does on an account; each shows its result
// (or the server's reason for refusing) below the buttons.
function actions(path, a, redraw, result) {
  const out = h("div", { id: "action-result", "aria-live": "polite" }, result);
  const show = (...content) => out.replaceChildren(h("div", { class: "result" }, ...content));
  const run = (fn) => async () => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof api.Unauthenticated) return location.reload();
      out.replaceChildren(errorBox(err));
    }
  };
  const del = run(async () => {
    const force = a.everConnected ? "&force=true" : "";
    const dry = await api.call("DELETE", path + "?dryRun=true" + force);
    show("Dry run: ", short(dry.outcome, "DELETION_OUTCOME_"), ". ",
      a.everConnected ? "It once connected: its data at the provider is deleted too. " : "",
      h("button", { type: "button", class: "danger", id: "confirm-delete", onclick: run(async () => {
        const res = await api.call("DELETE", path + "?dryRun=false" + force);
        redraw("Deletion: " + short(res.outcome, "DELETION_OUTCOME_") + ".");
      }) }, "Confirm delete"), " ",
      h("button", { type: "button", class: "secondary", onclick: () => out.replaceChildren() }, "Cancel"));
  });
  const refresh = run(async () => {
    const res = await api.call("POST", path + ":refresh", {});
    redraw("Refreshed from the provider: " + short(res.outcome, "DELIVERY_OUTCOME_") + ".");
  });
  const reconnect = run(async () => show(...reconnectLink(await api.call("POST", path + ":reconnectLink", {}))));
  const invite = run(async () => {
    const res = await api.call("POST", path + ":resendInvite", {});
    show("Invite ", res.inviteId, " re-sent (", res.inviteStatus, "); again at the earliest ", exact(res.nextResendAt), ".");
  });
  const linkable = ["HEALTH_STATE_AUTH_FAILED", "HEALTH_STATE_DISCONNECTED"].includes(a.state);
  return h("div", {},
    h("div", { class: "actions" },
      a.state === "HEALTH_STATE_AUTH_FAILED" ? h("button", { type: "button", class: "danger", id: "delete", onclick: del }, "Delete failed account…") : null,
      h("button", { type: "button", class: "secondary", id: "refresh", onclick: refresh }, "Refresh from provider"),
      linkable ? h("button", { type: "button", class: "secondary", id: "reconnect", onclick: reconnect }, "Reconnect link") : null,
      linkable ? h("button", { type: "button", class: "secondary", id: "resend-invite", onclick: invite }, "Resend invite") : null),
    out);
}

// reconnectLink shows what opens Link at the account, with a copy button:
// the invite URL when there is one, else Link's parameters (a secret user
// token, valid until it expires).
function reconnectLink(res) {
  const text = res.inviteUrl || JSON.stringify(res.linkParameters);
  const field = h("input", { readonly: true, value: text, id: "reconnect-value", "aria-label": "Reconnect link", size: 40 });
  return [res.inviteUrl ? "Invite URL: " : "Link parameters (user token valid until " + exact(res.userTokenExpiresAt) + "): ", field, " ",
    h("button", { type: "button", class: "secondary", onclick: async (e) => {
      await navigator.clipboard.writeText(text);
      e.target.textContent = "Copied";
    } }, "Copy")];
}

function timeline(path, first) {
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary", id: "more-events" }, "Load more");
  const add = (page) => {
    body.append(...(page.events || []).map(entry));
    more.hidden = !page.nextPageToken;
    more.onclick = async () => add(await api.get(path + "/events?pageSize=" + TIMELINE_PAGE + "&pageToken=" + encodeURIComponent(page.nextPageToken)));
  };
  add(first);
  return h("section", { class: "panel" },
    h("h2", {}, "Timeline"),
    h("p", { class: "muted" }, "Deliveries and API actions (audit entries), oldest first, with what each did."),
    h("div", { class: "scroll" }, h("table", { id: "timeline" },
      h("thead", {}, h("tr", {}, ["#", "Received", "Source", "Event", "Outcome", "Change", "Body"].map((c) => h("th", { scope: "col" }, c)))),
      body)),
    more);
}

function entry(e) {
  const t = e.transition;
  return h("tr", { "data-source": e.source },
    h("td", { class: "num" }, e.sequence),
    h("td", {}, when(e.receivedAt)),
    h("td", {}, e.source === "api" ? ["api: ", h("code", {}, e.actor || "")] : [e.source, e.subscriptionName ? " (" + e.subscriptionName + ")" : ""]),
    h("td", {}, e.eventType, e.redeliveries ? ` (+${e.redeliveries} redelivered)` : ""),
    h("td", {}, short(e.outcome, "DELIVERY_OUTCOME_")),
    h("td", {}, t ? change(t) : ""),
    h("td", {}, e.payload ? h("details", {}, h("summary", {}, "show"), h("pre", {}, JSON.stringify(e.payload, null, 2))) : ""));
}

// change is what a transition did: the state it left and entered, or, for
// a freshness event (the state stays HEALTHY), the data freshness.
function change(t) {
  const moved = t.kind?.startsWith("TRANSITION_KIND_FRESHNESS_")
    ? [freshnessText(t.previousFreshness), " → ", freshnessText(t.freshness, t.failedDatasets)]
    : [fromState(t.previousState), " → ", short(t.state, "HEALTH_STATE_")];
  return [kindBadge(t.kind), " ", moved, t.errorCode ? [" ", h("code", {}, t.errorCode)] : ""];
}
