// The live feed: StreamDisconnections followed from when the page opened,
// the newest 200 events kept, newest first.
import * as api from "./api.js";
import { h, stateBadge, kindBadge, when, fromState } from "./dom.js";

const MAX_EVENTS = 200;
const events = [];
let list = null; // the feed page's tbody while it is shown

export function startFeed() {
  const badge = document.getElementById("feed-state");
  api.follow((ev) => {
    events.unshift(ev);
    events.length = Math.min(events.length, MAX_EVENTS);
    if (list?.isConnected) list.prepend(row(ev));
    while (list && list.children.length > MAX_EVENTS) list.lastChild.remove();
  }, (state) => {
    badge.dataset.state = state;
    badge.textContent = { live: "live", reconnecting: "reconnecting…", login: "not logged in" }[state];
  });
}

function row(ev) {
  return h("tr", { "data-account": ev.accountId },
    h("td", {}, when(ev.occurredAt)),
    h("td", {}, kindBadge(ev.kind)),
    h("td", {}, h("a", { href: "#/account/" + encodeURIComponent(ev.accountId) }, h("code", {}, ev.accountId))),
    h("td", {}, fromState(ev.previousState), " → ", stateBadge(ev.state)),
    h("td", {}, ev.errorCode ? h("code", {}, ev.errorCode) : ""),
    h("td", {}, ev.remedy?.message || ""));
}

export function feed() {
  list = h("tbody", { id: "feed-rows" }, events.map(row));
  return h("section", {},
    h("h1", {}, "Live feed"),
    h("p", { class: "muted" }, "Disconnections and recoveries as they are committed, newest first (the last ", String(MAX_EVENTS),
      " since this page opened). After a break the feed resumes where it stopped."),
    h("div", { class: "panel scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Time", "Kind", "Account", "State", "Code", "Remedy"].map((c) => h("th", { scope: "col" }, c)))),
      list)));
}
