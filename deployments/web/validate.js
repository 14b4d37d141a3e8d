// The Validate view: the screen in the form replayed over history (POST /v1/validate/stream),
// its report as tables and four charts drawn from the JSON with the page's chart library
// (TradingView Lightweight Charts): the portfolio's cumulative excess shaded by the market
// regime of each session (regimes.js), with a table per regime, the rolling rank IC,
// mean excess by decile and the passing count per session. The report's data source leads
// the view (a banner when it is the synthetic demo market). The time charts always show the
// whole replay, first session to last, at any width: bars may be thinner than a pixel, and
// the charts refit whenever their pane is resized.

import { streamJSON } from "./api.js";
import { BASE } from "./chart.js";
import { regimeLegend, shadeRegimes } from "./regimes.js";

const $ = (id) => document.getElementById(id);
const ok = (v) => typeof v === "number" && Number.isFinite(v);
const ROLLING = 21; // evaluated sessions in the rolling IC
const LINE = { lineWidth: 2, priceLineVisible: false, lastValueVisible: true };
const pct = (v, digits = 2) => (ok(v) ? `${(v * 100).toFixed(digits)}%` : "—");
const num = (v, digits = 2) => (ok(v) ? v.toFixed(digits) : "—");

let charts = [];
let last = null; // the last result: {report, daily}
let lines = {}; // the time charts' main series, for the page tests: {cum, ic, passing}
// the whole period in any width: no minimum bar width, no scrolling or zooming away from it
const WHOLE = { timeScale: { ...BASE.timeScale, minBarSpacing: 0.001, rightOffset: 0,
                             fixLeftEdge: true, fixRightEdge: true },
                handleScroll: false, handleScale: false };
const fitting = new ResizeObserver((entries) => {
  for (const e of entries) e.target.chart?.timeScale().fitContent();
});

/** The validate options of the form, as the fields of a ValidateRequest. */
export function validateFields(form) {
  const body = {};
  for (const name of ["start", "end"]) {
    const v = form.elements[name].value;
    if (v) body[name] = v;
  }
  for (const name of ["every", "top_n", "rebalance", "cost_bps"]) {
    const v = form.elements[name].value.trim();
    if (v !== "") body[name] = Number(v);
  }
  const horizons = form.elements.horizons.value.split(/[\s,]+/).filter(Boolean);
  if (horizons.length) body.horizons = horizons.map(Number);
  return body;
}

export function runValidation(body, onProgress) {
  return streamJSON("/v1/validate/stream", body, onProgress);
}

/** Rolling mean of the finite values among the last `n` entries (null until one is seen). */
export function rollingMean(values, n) {
  const out = [];
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (ok(values[i])) { sum += values[i]; count += 1; }
    const j = i - n;
    if (j >= 0 && ok(values[j])) { sum -= values[j]; count -= 1; }
    out.push(count ? sum / count : null);
  }
  return out;
}

function chart(el, options = {}) {
  const c = window.LightweightCharts.createChart(el, { ...BASE, ...options });
  charts.push(c);
  return c;
}

/** A chart over the replay's sessions that always shows all of them (WHOLE). */
function wholeChart(el) {
  const c = chart(el, WHOLE);
  el.chart = c;
  fitting.observe(el);
  return c;
}

const series = (times, values) => times.map((time, i) => (ok(values[i])
  ? { time, value: values[i] } : { time }));

function cell(row, text, cls) {
  const td = document.createElement(row.parentElement?.tagName === "THEAD" ? "th" : "td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
}

function fillTable(table, head, rows) {
  const thead = table.createTHead();
  thead.replaceChildren();
  const hr = thead.insertRow();
  head.forEach((h, i) => cell(hr, h, i ? "num" : ""));
  const body = table.tBodies[0] || table.createTBody();
  body.replaceChildren();
  for (const r of rows) {
    const tr = body.insertRow();
    r.forEach((v, i) => cell(tr, v, i ? "num" : ""));
  }
}

const marked = (s) => (s && s.meaningful === false ? " *" : "");

function drawTables(report, horizon) {
  const hs = Object.entries(report.horizons);
  fillTable($("val-horizons"), ["Horizon", "Mean excess (log)", "NW t", "Hit rate",
    "Rank IC", "IC t", "IC IR", "Cut by delisting"], hs.map(([h, s]) => [
    `${h} sessions`, pct(s.passing_excess.mean, 3) + marked(s.passing_excess),
    num(s.passing_excess.t_stat), pct(s.hit_rate, 1), num(s.rank_ic.mean, 4) + marked(s.rank_ic),
    num(s.rank_ic.t_stat), num(s.rank_ic.ic_ir, 3), String(s.truncated_by_delisting)]));
  const group = (which) => Object.entries(report.horizons[horizon][which]).map(([k, s]) => [
    k, pct(s.mean, 3) + marked(s), num(s.t_stat), String(s.n_sessions)]);
  fillTable($("val-regimes"), ["Market regime", "Sessions", "Mean excess", "NW t", "Hit rate",
    "Rank IC", "IC t"], Object.entries(report.horizons[horizon].by_regime || {}).map(
    ([name, s]) => [name, String(s.sessions), pct(s.passing_excess.mean, 3) +
      marked(s.passing_excess), num(s.passing_excess.t_stat), pct(s.hit_rate, 1),
      num(s.rank_ic.mean, 4) + marked(s.rank_ic), num(s.rank_ic.t_stat)]));
  fillTable($("val-years"), ["Year", "Mean excess", "NW t", "Sessions"], group("by_year"));
  fillTable($("val-sectors"), ["Sector", "Mean excess", "NW t", "Sessions"], group("by_sector"));
  const p = report.portfolio;
  const held = p.per_held_step;
  $("val-portfolio").textContent = `Top ${p.top}, rebalanced every ${p.rebalance_every} ` +
    `evaluated sessions, net of ${p.cost_bps_per_side} bps per side, over the replay's ` +
    `${p.calendar_days} calendar days: cumulative excess ${pct(p.cumulative_excess, 1)}, ` +
    `annualised ${pct(p.annualised_excess, 1)} (gross ${pct(p.cumulative_excess_gross, 1)}, ` +
    `${pct(p.annualised_excess_gross, 1)}), volatility ${pct(p.annualised_volatility, 1)}, ` +
    `max drawdown ${pct(p.max_drawdown, 1)}, turnover ${pct(p.turnover, 0)}; per held step ` +
    `(${p.held_steps} of ${p.steps}) ${pct(held.mean_excess, 3)}, t ${num(held.t_stat)}.`;
}

function drawCharts(report, daily, horizon) {
  fitting.disconnect();
  for (const c of charts) c.remove();
  charts = [];
  const times = daily.session;
  const cum = wholeChart($("val-cum"));
  if (daily.regime) shadeRegimes(cum, times, daily.regime);
  regimeLegend($("val-regime-legend"), report.regimes?.sessions);
  const gross = []; // the wealth at each session's close, before its step: 0 at the first
  let wealth = 1;
  for (const r of daily.portfolio_gross) { gross.push(wealth - 1); if (ok(r)) wealth *= 1 + r; }
  cum.addLineSeries({ ...LINE, color: "#94a3b8", lineWidth: 1, title: "gross" })
    .setData(series(times, gross));
  const net = cum.addLineSeries({ ...LINE, color: "#2962ff", title: "net" });
  net.setData(series(times, daily.portfolio_cumulative));

  const ic = wholeChart($("val-ic"));
  const icLine = ic.addLineSeries({ ...LINE, color: "#7c3aed", title: `IC ${horizon}d` });
  icLine.setData(series(times, rollingMean(daily[`rank_ic_${horizon}d`] || [], ROLLING)));
  icLine.createPriceLine({ price: 0, color: "#6b7280", lineWidth: 1, lineStyle: 2 });

  const labels = { tickMarkFormatter: (t) => `D${t}` };
  const dec = chart($("val-deciles"), { timeScale: { ...BASE.timeScale, ...labels },
                                         localization: { timeFormatter: (t) => `decile ${t}` },
                                         handleScroll: false, handleScale: false });
  dec.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false }).setData(
    report.horizons[horizon].deciles.filter((d) => ok(d.mean_excess)).map((d) => ({
      time: d.decile, value: d.mean_excess, color: d.mean_excess >= 0 ? "#26a69a" : "#ef5350",
    })));
  dec.timeScale().fitContent();

  const passing = wholeChart($("val-passing"));
  const bars = passing.addHistogramSeries({ color: "#2962ff", priceLineVisible: false,
                                            title: "passing" });
  bars.setData(series(times, daily.passing));
  for (const c of [cum, ic, passing]) c.timeScale().fitContent();
  lines = { cum: [cum, net], ic: [ic, icLine], passing: [passing, bars] };
}

/** What each time chart shows: its visible time range and its first data point. */
export function chartView() {
  const out = {};
  for (const [name, [c, s]] of Object.entries(lines)) {
    out[name] = { range: c.timeScale().getVisibleRange(), first: s.dataByIndex(0),
                  points: s.data().length };
  }
  return out;
}

/** Draw a validation result (the stream's result event) into the Validate section. */
export function showValidation(result) {
  last = result;
  const { report, daily } = result;
  const d = report.data;
  const source = $("val-source");
  source.textContent = d.notice;
  source.className = d.synthetic ? "banner" : "muted";
  $("val-summary").textContent = `${d.sessions_evaluated} sessions evaluated, ` +
    `${d.first_session} to ${d.last_session}, ${d.symbols} symbols · passing per session ` +
    `${num(report.passing.mean_per_session, 1)} (none on ${report.passing.sessions_with_none})` +
    ` · ${d.history_needed} sessions of history before the first · ${report.timings_ms.total} ms`;
  $("val-survivorship").textContent = report.assumptions.survivorship;
  const select = $("val-horizon");
  const chosen = select.value;
  select.replaceChildren(...Object.keys(report.horizons).map((h) => new Option(`${h}d`, h)));
  select.value = report.horizons[chosen] ? chosen : select.options[0].value;
  $("validation").hidden = false;
  redraw();
}

function redraw() {
  if (!last) return;
  const horizon = $("val-horizon").value;
  drawTables(last.report, horizon);
  drawCharts(last.report, last.daily, horizon);
}

/** The daily series as CSV (the same columns as POST /v1/validate with format=csv). */
export function dailyCsv(daily) {
  const cols = Object.keys(daily);
  const esc = (v) => (v === null || v === undefined ? "" : String(v));
  const lines = [cols.join(",")];
  for (let i = 0; i < daily[cols[0]].length; i++) lines.push(cols.map((c) => esc(daily[c][i])).join(","));
  return lines.join("\n") + "\n";
}

export function initValidate(download) {
  $("val-horizon").addEventListener("change", redraw);
  $("val-csv").addEventListener("click", () => last && download(
    dailyCsv(last.daily), `technic-validate-${last.report.data.last_session}.csv`));
  window.technicValidation = () => last; // for the browser tests and the console
  window.technicValidationCharts = chartView;
}
