// "Why this rating": the symbol dialog's breakdown of TechRating, Signal and the alpha
// forecasts, from GET /v1/symbols/{symbol}/explain (technic_v4/scan/explain.py).
//
// Shown: each sub-score with its weight, score, weighted score and the rules that fired (with
// the values they read), the weighted sum, the risk factor, TechRating = 100 × weighted sum /
// total weight × risk factor, the Signal rule, and each model's per-feature contributions as
// a bar list (bias + contributions = forecast). Every text goes in through textContent; the
// bars' widths through the CSSOM (el.style), never markup.

import { api, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const ok = (v) => typeof v === "number" && Number.isFinite(v);
const signed = (v, d) => (ok(v) ? (v > 0 ? "+" : "") + v.toFixed(d) : "—");
const COMBINE = { mean: "mean of", product: "product of", single: "" };

let token = 0;

/** An element with a class and text (textContent only). */
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clear() {
  for (const id of ["explain-rating", "explain-signal", "explain-signal-rule", "explain-scan",
                    "explain-sum", "explain-risk", "explain-formula"]) $(id).textContent = "";
  $("explain-scores").tBodies[0].replaceChildren();
  $("explain-alpha").replaceChildren();
}

function scoreRow(sub) {
  const tr = document.createElement("tr");
  tr.dataset.name = sub.name;
  const rules = el("td", null, "rules");
  if (COMBINE[sub.combine]) rules.append(el("div", COMBINE[sub.combine], "muted"));
  for (const rule of sub.rules) rules.append(el("div", rule.text, "rule"));
  tr.append(el("td", sub.name), el("td", sub.weight, "num"),
            el("td", signed(sub.score, 3), "num " + (sub.score > 0 ? "pos" : sub.score < 0 ? "neg" : "")),
            el("td", signed(sub.weighted, 3), "num"), rules);
  return tr;
}

function modelBlock(model) {
  const box = el("div", null, "model");
  box.dataset.model = model.id;
  if (!model.available) {
    box.append(el("h4", `${model.column}: unavailable`), el("p", model.reason, "muted"));
    return box;
  }
  box.append(el("h4", `${model.column} ${signed(model.forecast * 100, 3)}% ` +
                      `(${model.id}@${model.version})`),
             el("p", `bias ${signed(model.bias, 6)} + contributions = ${signed(model.sum, 6)}`,
                "muted"));
  const items = [...model.contributions].sort((a, b) => Math.abs(b.contribution) -
                                                       Math.abs(a.contribution));
  const scale = Math.max(...items.map((c) => Math.abs(c.contribution)), 0) || 1;
  const list = el("ul", null, "bars");
  for (const c of items) {
    const li = el("li");
    li.dataset.feature = c.feature;
    const track = el("span", null, "track");
    const bar = el("span", null, "bar " + (c.contribution >= 0 ? "up" : "down"));
    bar.style.width = `${(50 * Math.abs(c.contribution)) / scale}%`;
    if (c.contribution < 0) bar.style.right = "50%"; else bar.style.left = "50%";
    track.append(bar);
    li.append(el("span", c.feature, "feature"),
              el("span", ok(c.value) ? Number(c.value.toPrecision(4)) : "—", "num muted"),
              track, el("span", signed(c.contribution, 6), "num"));
    list.append(li);
  }
  box.append(list);
  return box;
}

function render(data) {
  const r = data.tech_rating;
  $("explain-rating").textContent = r.value.toFixed(2);
  const sig = $("explain-signal");
  sig.textContent = r.signal.value;
  sig.className = "sig-" + r.signal.value.toLowerCase().replace(" ", "-");
  $("explain-signal-rule").textContent = r.signal.rule;
  const scan = data.scan;
  $("explain-scan").textContent = `as of ${data.meta.as_of} (last bar ${data.last_bar || "none"})` +
    ` · scoring ${r.scoring_version} · default scan: ` +
    (scan.kept ? "kept" : `rejected (${scan.reason}: ${scan.detail})`) +
    (data.incomplete.length ? ` · too few bars for ${data.incomplete.join(", ")}` : "");
  $("explain-scores").tBodies[0].replaceChildren(...r.sub_scores.map(scoreRow));
  const raw = r.weighted_sum / r.weight_total;
  $("explain-sum").textContent = `weighted sum ${signed(r.weighted_sum, 4)} / total weight ` +
    `${r.weight_total} = ${signed(raw, 4)}`;
  $("explain-risk").textContent = `risk factor: ${r.risk_factor.text}`;
  $("explain-formula").textContent = `TechRating = 100 × ${signed(raw, 4)} × ` +
    `${r.risk_factor.value.toFixed(4)} = ${r.value.toFixed(2)}`;
  const alpha = data.alpha;
  const blocks = alpha.models.map(modelBlock);
  blocks.push(el("p", alpha.alpha_score, "muted"));
  $("explain-alpha").replaceChildren(...blocks);
}

/** Load and show the breakdown of `symbol` (the latest session). */
export async function openExplain(symbol) {
  const mine = ++token;
  const panel = $("explain");
  panel.dataset.state = "loading";
  clear();
  showError("", $("explain-error"));
  try {
    const path = `/v1/symbols/${encodeURIComponent(symbol)}/explain`;
    const data = await (await api(path)).json();
    if (mine !== token) return; // another symbol was opened meanwhile
    render(data);
    panel.dataset.state = "ready";
  } catch (err) {
    if (mine !== token) return;
    clear();
    showError(err.message, $("explain-error"));
    panel.dataset.state = "error";
  }
}

function init() {
  $("chart-dialog").addEventListener("close", () => { token++; clear(); });
}

init();
