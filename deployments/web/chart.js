// A symbol's chart: candlesticks + volume + SMA 20/50/200 + Bollinger bands, RSI and MACD panes,
// from GET /v1/symbols/{symbol}?days=N, drawn with the vendored TradingView Lightweight Charts
// (window.LightweightCharts, v4: one chart per pane, their time scales kept in step).
//
// Every series gets one point per session; a session with no value (warm-up NaN, a missing
// bar) is a whitespace point {time}, so the three panes share logical indices and scroll
// together.

import { api, showError } from "./api.js";
import { openExplain } from "./explain.js";

const $ = (id) => document.getElementById(id);
const COLORS = { up: "#26a69a", down: "#ef5350", sma20: "#f59e0b", sma50: "#2962ff",
                 sma200: "#7c3aed", bb: "#94a3b8", rsi: "#7c3aed", macd: "#2962ff",
                 signal: "#f59e0b" };
const LEGEND = [["SMA 20", COLORS.sma20], ["SMA 50", COLORS.sma50], ["SMA 200", COLORS.sma200],
                ["Bollinger (20, 2)", COLORS.bb]];
export const BASE = {
  autoSize: true,
  layout: { background: { color: "#ffffff" }, textColor: "#1d2330", fontSize: 11 },
  grid: { vertLines: { color: "#eef1f6" }, horzLines: { color: "#eef1f6" } },
  rightPriceScale: { minimumWidth: 70 },
  timeScale: { borderColor: "#d9dde5" },
  crosshair: { mode: 0 },
};
const LINE = { lineWidth: 1, priceLineVisible: false, lastValueVisible: false,
               crosshairMarkerVisible: false };

let charts = [];
let current = null; // {symbol, token}
let token = 0;

const ok = (v) => typeof v === "number" && Number.isFinite(v);

/** [{time, value}] with whitespace points where `values` has no number. */
export function lineData(times, values, extra) {
  return times.map((time, i) => (ok(values?.[i]) ? { time, value: values[i], ...(extra?.(i) || {}) }
    : { time }));
}

function candleData(times, bars) {
  return times.map((time, i) => {
    const [o, h, l, c] = ["open", "high", "low", "close"].map((f) => bars[f][i]);
    return [o, h, l, c].every(ok) ? { time, open: o, high: h, low: l, close: c } : { time };
  });
}

function clear() {
  for (const c of charts) c.remove();
  charts = [];
}

function makeChart(el, options = {}) {
  const chart = window.LightweightCharts.createChart(el, { ...BASE, ...options });
  charts.push(chart);
  return chart;
}

function draw(data) {
  const times = data.sessions;
  const ind = data.indicators;
  clear();

  const hidden = { timeScale: { visible: false } }; // one time axis, under the last pane
  const main = makeChart($("chart-main"), hidden);
  const candles = main.addCandlestickSeries({
    upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
    wickUpColor: COLORS.up, wickDownColor: COLORS.down });
  candles.setData(candleData(times, data.bars));
  const volume = main.addHistogramSeries({ priceScaleId: "volume", priceFormat: { type: "volume" },
                                           priceLineVisible: false, lastValueVisible: false });
  main.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  volume.setData(lineData(times, data.bars.volume, (i) => ({
    color: data.bars.close[i] >= data.bars.open[i] ? "rgba(38,166,154,.45)"
      : "rgba(239,83,80,.45)" })));
  for (const [key, color] of [["BB_upper", COLORS.bb], ["BB_middle", COLORS.bb],
                              ["BB_lower", COLORS.bb]]) {
    main.addLineSeries({ ...LINE, color, lineStyle: key === "BB_middle" ? 2 : 0 })
      .setData(lineData(times, ind[key]));
  }
  for (const [key, color] of [["SMA20", COLORS.sma20], ["SMA50", COLORS.sma50],
                              ["SMA200", COLORS.sma200]]) {
    main.addLineSeries({ ...LINE, color, lineWidth: 2 }).setData(lineData(times, ind[key]));
  }

  const rsiChart = makeChart($("chart-rsi"), { ...hidden, layout: { ...BASE.layout,
                                                                  attributionLogo: false } });
  const rsi = rsiChart.addLineSeries({ ...LINE, color: COLORS.rsi, lastValueVisible: true });
  rsi.setData(lineData(times, ind.RSI));
  for (const level of [70, 30]) {
    rsi.createPriceLine({ price: level, color: "#94a3b8", lineWidth: 1, lineStyle: 2,
                          axisLabelVisible: true, title: "" });
  }

  const macdChart = makeChart($("chart-macd"), { layout: { ...BASE.layout,
                                                          attributionLogo: false } });
  macdChart.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false })
    .setData(lineData(times, ind.MACD_hist, (i) => ({
      color: ind.MACD_hist[i] >= 0 ? "rgba(38,166,154,.6)" : "rgba(239,83,80,.6)" })));
  macdChart.addLineSeries({ ...LINE, color: COLORS.macd }).setData(lineData(times, ind.MACD));
  macdChart.addLineSeries({ ...LINE, color: COLORS.signal })
    .setData(lineData(times, ind.MACD_signal));

  // keep the three time scales in step (same sessions, so the same logical range)
  let syncing = false;
  for (const src of charts) {
    src.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (syncing || !range) return;
      syncing = true;
      for (const dst of charts) if (dst !== src) dst.timeScale().setVisibleLogicalRange(range);
      syncing = false;
    });
  }
  main.timeScale().fitContent();
}

function renderLegend() {
  const legend = $("chart-legend");
  legend.replaceChildren(...LEGEND.map(([label, color]) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    span.append(swatch, label);
    return span;
  }));
}

/** Open the chart dialog for `symbol` and draw its last `days` sessions. */
export async function openChart(symbol, days) {
  const dialog = $("chart-dialog");
  const daysSelect = $("chart-days");
  if (days) daysSelect.value = String(days);
  const mine = ++token;
  const fresh = !dialog.open || current?.symbol !== symbol; // not just other days
  current = { symbol };
  $("chart-title").textContent = symbol;
  $("chart-sub").textContent = "loading…";
  showError("", $("chart-error"));
  renderLegend();
  if (!dialog.open) dialog.showModal();
  if (fresh) openExplain(symbol); // "Why this rating", below the chart (explain.js)
  dialog.dataset.state = "loading";
  try {
    if (!window.LightweightCharts) throw new Error("the chart library did not load");
    const path = `/v1/symbols/${encodeURIComponent(symbol)}?days=${daysSelect.value}`;
    const data = await (await api(path)).json();
    if (mine !== token) return; // another symbol was clicked meanwhile
    const last = data.bars.close.filter(ok).at(-1);
    $("chart-sub").textContent = `${data.name} · ${data.sector} · ${data.industry} · ` +
      `close ${ok(last) ? last.toFixed(2) : "—"} · ${data.sessions.length} sessions to ` +
      `${data.meta.as_of} · ${data.meta.source}`;
    draw(data);
    dialog.dataset.state = "ready";
  } catch (err) {
    if (mine !== token) return;
    clear();
    $("chart-sub").textContent = "";
    showError(err.message, $("chart-error"));
    dialog.dataset.state = "error";
  }
}

function init() {
  const dialog = $("chart-dialog");
  $("chart-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { clear(); token++; current = null; });
  $("chart-days").addEventListener("change", () => current && openChart(current.symbol));
}

init();
