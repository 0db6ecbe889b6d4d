// The overview's chart: one stacked bar per time bucket, a segment per
// transition kind, drawn as SVG. Hovering or focusing a bar shows its
// numbers.
import { h, kindKey, short } from "./dom.js";

export const KINDS = ["TRANSITION_KIND_DISCONNECTED", "TRANSITION_KIND_AUTH_FAILED", "TRANSITION_KIND_DEGRADED",
  "TRANSITION_KIND_REMOVED", "TRANSITION_KIND_RECOVERED", "TRANSITION_KIND_CORRECTED"];

const NS = "http://www.w3.org/2000/svg";
const W = 720, H = 200, LEFT = 36, BOTTOM = 22, TOP = 10;

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

// buckets fills the window [start, start + n*width) from the API's counts
// (which leave out empty buckets).
export function buckets(counts, start, width, n) {
  const out = Array.from({ length: n }, (_, i) => ({ start: new Date(start.getTime() + i * width), byKind: {} }));
  for (const c of counts || []) {
    const i = Math.floor((new Date(c.startTime) - start) / width);
    if (i >= 0 && i < n) out[i].byKind[c.kind] = (out[i].byKind[c.kind] || 0) + Number(c.count || 0);
  }
  return out;
}

export function describe(b, label) {
  const parts = KINDS.filter((k) => b.byKind[k]).map((k) => `${b.byKind[k]} ${short(k, "TRANSITION_KIND_")}`);
  return `${label(b.start)}: ${parts.length ? parts.join(", ") : "no transitions"}`;
}

// chart draws bs; label names a bucket's start, tick says which to label
// on the axis, and detail is the element that shows a bar's numbers.
export function chart(bs, label, tick, detail) {
  const total = (b) => KINDS.reduce((n, k) => n + (b.byKind[k] || 0), 0);
  const max = Math.max(1, ...bs.map(total));
  const plotH = H - BOTTOM - TOP, slot = (W - LEFT) / bs.length, barW = Math.max(2, slot * 0.7);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "group", "aria-label": "Transitions per bucket" });
  svg.append(
    s("line", { class: "grid", x1: LEFT, x2: W, y1: TOP, y2: TOP }),
    s("line", { class: "grid", x1: LEFT, x2: W, y1: TOP + plotH, y2: TOP + plotH }),
    s("text", { class: "axis", x: LEFT - 6, y: TOP + 4, "text-anchor": "end" }, String(max)),
    s("text", { class: "axis", x: LEFT - 6, y: TOP + plotH + 4, "text-anchor": "end" }, "0"),
  );
  bs.forEach((b, i) => {
    const x = LEFT + i * slot + (slot - barW) / 2;
    const text = describe(b, label);
    const g = s("g", { class: "bar", tabindex: "0", "aria-label": text, "data-total": total(b) },
      s("title", {}, text), s("rect", { class: "hit", x: LEFT + i * slot, y: TOP, width: slot, height: plotH }));
    let y = TOP + plotH;
    for (const k of KINDS) {
      const n = b.byKind[k] || 0;
      if (!n) continue;
      const hh = (n / max) * plotH;
      y -= hh;
      g.append(s("rect", { class: "k-" + kindKey(k), x, y, width: barW, height: hh }));
    }
    const show = () => { detail.textContent = text; };
    g.addEventListener("mouseenter", show);
    g.addEventListener("focus", show);
    svg.append(g);
    if (tick(i)) svg.append(s("text", { class: "axis", x: LEFT + i * slot + slot / 2, y: H - 6, "text-anchor": "middle" }, label(b.start, true)));
  });
  return svg;
}

export function legend() {
  return h("ul", { class: "legend" }, KINDS.map((k) =>
    h("li", {}, h("span", { class: "badge k-" + kindKey(k), "aria-hidden": "true" }), short(k, "TRANSITION_KIND_"))));
}
