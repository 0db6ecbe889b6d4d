// Calls to the REST gateway and its NDJSON stream. The session cookie
// goes with every same-origin request; a 401 means: log in.

export class Unauthenticated extends Error {}

// ApiError carries the google.rpc.Status the gateway answers with.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.reason = body?.details?.find((d) => d.reason)?.reason || "";
  }
}

export async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (res.status === 401) throw new Unauthenticated(data?.message || "log in");
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path) => call("GET", path);

export function session() {
  return get("/ui/session");
}

export async function login(token) {
  const res = await fetch("/ui/login", { method: "POST", body: new URLSearchParams({ token }) });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export function logout() {
  return fetch("/ui/logout", { method: "POST" });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// follow reads StreamDisconnections (with recoveries) for ever: each event
// goes to onEvent, and onState hears "live" or "reconnecting". After a
// break it resumes after the last cursor it got (from an event or a
// heartbeat), so nothing is missed or repeated; it waits longer after each
// failure in a row, up to 10 s. It stops on a 401 (onState "login").
export async function follow(onEvent, onState) {
  let cursor = "";
  let delay = 500;
  for (;;) {
    const q = new URLSearchParams({ includeRecoveries: "true" });
    if (cursor) q.set("resumeAfter", cursor);
    try {
      const res = await fetch("/v1/disconnections:stream?" + q, { headers: { Accept: "application/x-ndjson" } });
      if (res.status === 401) {
        onState("login");
        return;
      }
      if (res.ok) {
        for await (const msg of lines(res.body)) {
          if (msg.error) break;
          const r = msg.result || {};
          const at = r.event || r.heartbeat;
          if (at?.cursor) cursor = at.cursor;
          if (r.event) onEvent(r.event);
          onState("live");
          delay = 500;
        }
      }
    } catch {
      // The server went away: reconnect below.
    }
    onState("reconnecting");
    await sleep(delay);
    delay = Math.min(delay * 2, 10000);
  }
}

// lines yields the JSON values of an NDJSON body, one per line.
async function* lines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield JSON.parse(line);
    }
  }
}
