// The scan page: form -> POST /v1/scan/stream (NDJSON progress, then the result) -> table.
//
// Every request goes through `api()` (api.js); any failure ends in `showError`, so a failing
// call is a visible message (the API's own detail), never a blank page. No data is ever
// inserted as HTML: text goes in through textContent, options through new Option().

import { api, apiKey, KEY_STORE, showError, streamJSON } from "./api.js";
import { openChart } from "./chart.js";
import { initRegimes } from "./regimes.js";
import { initSaved, loadScreens, savedFields } from "./saved.js";
import { clearExpressionErrors, screenFields, showExpressionErrors } from "./screen.js";
import { ResultsTable } from "./table.js";
import { initValidate, runValidation, showValidation, validateFields } from "./validate.js";
import { initWatches } from "./watches.js";

const $ = (id) => document.getElementById(id);
const SIGNALS = ["Strong Long", "Long", "Avoid", "Short", "Strong Short"];
// share of the progress bar at the start of each stage of /v1/scan/stream
const STAGES = { load: [0, 10], indicators: [10, 70], score: [70, 75], alpha: [75, 92],
                 rank: [92, 100] };
const VALIDATE_STAGES = { indicators: [0, 40], replay: [40, 100] };

/** The alpha banner: shown, with the scan's reason, when the Alpha columns are empty. */
function showAlpha(alpha) {
  const off = Boolean(alpha) && alpha.available === false;
  $("alpha-banner").hidden = !off;
  $("alpha-banner").textContent = off
    ? `Alpha 5d / Alpha 10d are empty: ${alpha.reason || "alpha unavailable: no models"}` : "";
}

function showSource(meta) {
  if (!meta) return;
  $("synthetic-banner").hidden = meta.source !== "synthetic";
  $("data-info").textContent = `data ${meta.data_version} · ${meta.source} · as of ${meta.as_of}`;
  if (meta.as_of) document.querySelector("[name=as_of_date]").max = meta.as_of;
}

/** The header's market regime: the scan's session's regime and the numbers behind it. */
function showRegime(tags) {
  const el = $("regime-info");
  if (!tags || !tags.regime) { el.hidden = true; return; }
  const n = tags.numbers || {};
  const fmt = (v) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(2));
  el.hidden = false;
  el.textContent = `regime ${tags.regime}`;
  el.dataset.regime = tags.regime;
  el.title = `${tags.session} · benchmark ${tags.benchmark} · breadth_50 ${fmt(n.breadth_50)}` +
    ` · vol pct ${fmt(n.market_vol_pct)} · slope_50 ${fmt(n.market_slope_50)}`;
}

let sectorsLoads = 0; // the latest loadSectors call: an older answer (a key since changed) is dropped

async function loadSectors() {
  const select = $("sectors");
  const mine = ++sectorsLoads;
  try {
    const body = await (await api("/v1/sectors")).json();
    if (mine !== sectorsLoads) return;
    const chosen = new Set([...select.selectedOptions].map((o) => o.value));
    select.replaceChildren(...body.sectors.map((s) => {
      const opt = new Option(`${s.name} (${s.symbols})`, s.name);
      opt.selected = chosen.has(s.name);
      return opt;
    }));
    showSource(body.meta);
    await loadScreens();
    if (mine === sectorsLoads) showError("");
  } catch (err) {
    if (mine === sectorsLoads) showError(err.message);
  }
}

/** The form as a ScanRequest body: empty fields are left out (the API's defaults). */
export function scanRequest(form) {
  const body = {};
  const sectors = [...form.querySelector("#sectors").selectedOptions].map((o) => o.value);
  if (sectors.length) body.sectors = sectors;
  const signals = [...form.querySelectorAll("input[name=signal]:checked")].map((i) => i.value);
  if (signals.length) body.signals = signals;
  for (const name of ["min_tech_rating", "min_price", "min_dollar_volume", "limit"]) {
    const v = form.elements[name].value.trim();
    if (v !== "") body[name] = Number(v);
  }
  const asOf = form.elements.as_of_date.value;
  if (asOf) body.as_of_date = asOf;
  return { ...savedFields(), ...body, ...screenFields(form) };
}

/** A failed request: expression errors under their boxes, every error in the message box. */
function fail(err) {
  showExpressionErrors(err);
  showError(err.message);
}

function download(text, filename, type = "text/csv") {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** Run `request(onProgress)` behind `button`, with its progress bar and label: the button
 * disabled meanwhile, the label "done" or "failed", any error shown (fail). */
async function running(button, bar, text, stages, request) {
  $(button).disabled = true;
  showError("");
  clearExpressionErrors();
  $(bar).value = 0;
  $(text).textContent = "starting…";
  const onProgress = (event) => {
    const [lo, hi] = stages[event.stage] || [0, 100];
    const frac = event.total ? event.done / event.total : 1;
    $(bar).hidden = false;
    $(bar).value = lo + (hi - lo) * frac;
    $(text).textContent = `${event.stage} ${event.done}/${event.total}`;
  };
  try {
    await request(onProgress);
    $(bar).value = 100;
    $(text).textContent = "done";
  } catch (err) {
    fail(err);
    $(text).textContent = "failed";
  } finally {
    $(button).disabled = false;
  }
}

function summarise(meta, shown) {
  const reasons = Object.entries(meta.rejected_by_reason || {})
    .map(([why, n]) => `${why}: ${n}`).join(", ");
  const alpha = meta.alpha && meta.alpha.available === false
    ? ` · ${meta.alpha.reason || "alpha unavailable: no models"}` : "";
  showRegime(meta.regime_tags);
  return `${shown} rows · ${meta.attempted} scanned, ${meta.kept} kept, ${meta.rejected} ` +
    `rejected${reasons ? " (" + reasons + ")" : ""} · as of ${meta.as_of} · ` +
    `${Math.round(meta.elapsed_ms ?? meta.timings_ms?.total ?? 0)} ms${alpha}`;
}

function init() {
  const table = new ResultsTable({
    table: $("table"), prev: $("prev"), next: $("next"), pageInfo: $("page-info"),
    pageSize: $("page-size"),
  }, (symbol) => openChart(symbol));
  window.technicTable = table; // for the browser tests and the console

  $("key-form").addEventListener("submit", (e) => e.preventDefault());
  const keyInput = $("api-key");
  keyInput.value = apiKey();
  keyInput.addEventListener("change", () => {
    localStorage.setItem(KEY_STORE, keyInput.value.trim());
    loadSectors();
  });

  const signals = $("signals");
  for (const s of SIGNALS) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", name: "signal", value: s });
    label.append(box, " " + s);
    signals.append(label);
  }

  let lastRequest = null;
  $("scan-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = scanRequest(e.target);
    await running("run", "progress", "progress-text", STAGES, async (onProgress) => {
      const result = await streamJSON("/v1/scan/stream", body, onProgress);
      lastRequest = body;
      showSource(result.meta);
      showAlpha(result.meta.alpha);
      table.setRows(result.rows);
      $("summary").textContent = summarise(result.meta, result.rows.length);
      $("results").hidden = false;
    });
  });

  $("csv").addEventListener("click", () => download(
    table.csv(), `technic-scan-${lastRequest?.as_of_date || "latest"}.csv`));

  initSaved($("scan-form"), () => scanRequest($("scan-form")), fail);
  initValidate(download);
  initRegimes();
  $("validate").addEventListener("click", async () => {
    const form = $("scan-form");
    // the screen is the scan's form (as_of_date and limit do not apply: `end`, `top_n`)
    const { as_of_date: _asOf, limit: _limit, ...screen } = scanRequest(form);
    const body = { ...screen, ...validateFields(form) };
    await running("validate", "val-progress", "val-progress-text", VALIDATE_STAGES,
      async (onProgress) => {
        const result = await runValidation(body, onProgress);
        showSource(result.meta);
        showValidation(result);
      });
  });

  loadSectors();
  initWatches(() => scanRequest($("scan-form")));
}

init();
