// The dashboard: a page per hash route (#/, #/feed, #/accounts,
// #/account/ID, #/endpoints, #/endpoint/ID), each drawn from the REST API when it opens.
import * as api from "./api.js";
import { h, errorBox } from "./dom.js";
import { overview } from "./overview.js";
import { accounts } from "./accounts.js";
import { account } from "./account.js";
import { feed, startFeed } from "./feed.js";
import { endpoints, endpoint } from "./endpoints.js";

const main = document.getElementById("main");

// route parses the hash into a page name and its parameters.
function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  return { page: parts[0] || "overview", id: parts.slice(1).map(decodeURIComponent).join("/"), params: new URLSearchParams(query || "") };
}

const pages = { overview, feed, accounts, account, endpoints, endpoint };
// The list page each detail page belongs to, for the navigation.
const section = { account: "accounts", endpoint: "endpoints" };

let drawing = 0;
async function draw() {
  const r = route();
  const mine = ++drawing;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === (section[r.page] || r.page)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = pages[r.page];
  let view;
  try {
    view = page ? await page(r) : h("p", {}, "No such page. ", h("a", { href: "#/" }, "Go to the overview."));
  } catch (err) {
    if (err instanceof api.Unauthenticated) return showLogin();
    view = errorBox(err);
  }
  if (mine !== drawing) return; // a newer route was drawn meanwhile
  main.replaceChildren(view);
  main.dataset.drawn = location.hash || "#/"; // what is shown: tests wait for it
  document.title = (main.querySelector("h1")?.textContent || "Dashboard") + " · accounthealth";
}

function showLogin(message) {
  const error = h("p", { class: "error-text", role: "alert", id: "login-error" }, message || "");
  const input = h("input", { type: "password", name: "token", id: "token", required: true, autocomplete: "current-password" });
  const form = h("form", { id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api.login(input.value);
      location.reload();
    } catch (err) {
      error.textContent = err.message;
      input.select();
    }
  } },
  h("label", { for: "token" }, "API token", input),
  h("button", { type: "submit" }, "Log in"), error);
  main.replaceChildren(h("section", { class: "panel login" },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "Paste an API token (see --api-tokens-file). It is sent once; the browser then keeps a session cookie for 12 hours."),
    form));
  input.focus();
}

async function start() {
  let who;
  try {
    who = await api.session();
  } catch (err) {
    return main.replaceChildren(errorBox(err));
  }
  if (who.login) {
    const badge = document.getElementById("feed-state");
    badge.dataset.state = "login";
    badge.textContent = "not logged in";
    return showLogin();
  }
  document.getElementById("caller").textContent = who.caller;
  const out = document.getElementById("logout");
  out.hidden = !who.session;
  out.addEventListener("click", async () => { await api.logout(); location.reload(); });
  startFeed();
  window.addEventListener("hashchange", () => { draw(); main.focus(); });
  draw();
}

start();
