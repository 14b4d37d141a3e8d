// Market regimes on the page: the colours every regime chart shares, the shading (a histogram
// on an overlay scale, one full-height bar per session in its regime's colour, behind the
// lines), and the Regimes view: GET /v1/regimes as the benchmark's level shaded by regime,
// each regime's share of the sessions and the latest runs.

import { api, showError } from "./api.js";
import { BASE } from "./chart.js";

const $ = (id) => document.getElementById(id);
export const REGIME_COLORS = {
  "trend_up/calm": "rgba(38, 166, 154, 0.16)", "trend_up/high_vol": "rgba(38, 166, 154, 0.34)",
  "range/calm": "rgba(148, 163, 184, 0.14)", "range/high_vol": "rgba(245, 158, 11, 0.28)",
  "trend_down/calm": "rgba(239, 83, 80, 0.16)", "trend_down/high_vol": "rgba(239, 83, 80, 0.38)",
  unknown: "rgba(0, 0, 0, 0)",
};
let chart = null;
let last = null;

/** Shade `c` by `regimes` (one name per time in `times`), behind its other series. */
export function shadeRegimes(c, times, regimes) {
  const bands = c.addHistogramSeries({ priceScaleId: "regime", priceLineVisible: false,
                                       lastValueVisible: false, base: 0 });
  c.priceScale("regime").applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false });
  bands.setData(times.map((time, i) => ({ time, value: 1,
                                          color: REGIME_COLORS[regimes[i]] || REGIME_COLORS.unknown })));
  return bands;
}

/** The legend: each regime's colour, and its share when `shares` is given. */
export function regimeLegend(el, shares) {
  el.replaceChildren(...Object.entries(REGIME_COLORS).filter(([name]) => name !== "unknown")
    .map(([name, color]) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      const swatch = document.createElement("i");
      swatch.style.background = color.replace(/[\d.]+\)$/, "0.6)");
      const share = shares?.[name]?.share;
      item.append(swatch, ` ${name}${typeof share === "number" ? ` ${(share * 100).toFixed(1)}%` : ""}`);
      return item;
    }));
}

async function loadRegimes() {
  try {
    const body = await (await api("/v1/regimes")).json();
    last = body;
    const cols = body.columns;
    chart?.remove();
    chart = window.LightweightCharts.createChart($("regime-chart"), { ...BASE, // every session
      timeScale: { ...BASE.timeScale, minBarSpacing: 0.001, rightOffset: 0, fixLeftEdge: true,
                   fixRightEdge: true } });
    shadeRegimes(chart, cols.session, cols.regime);
    chart.addLineSeries({ color: "#2962ff", lineWidth: 2, priceLineVisible: false,
                          title: body.benchmark })
      .setData(cols.session.map((time, i) => (typeof cols.market_level[i] === "number"
        ? { time, value: cols.market_level[i] } : { time })));
    chart.timeScale().fitContent();
    regimeLegend($("regime-legend"), body.shares);
    $("regime-summary").textContent = `${body.first_session} to ${body.last_session} · ` +
      `benchmark ${body.benchmark} · rule v${body.version} · ` +
      `${body.shares.unknown?.sessions ?? 0} sessions before enough history`;
    $("regime-runs").replaceChildren(...body.spans.slice(-8).reverse().map((s) => {
      const li = document.createElement("li");
      li.textContent = `${s.start} – ${s.end}: ${s.regime} (${s.sessions} sessions)`;
      return li;
    }));
    $("regimes").hidden = false;
  } catch (err) {
    showError(err.message);
  }
}

export function initRegimes() {
  $("show-regimes").addEventListener("click", loadRegimes);
  window.technicRegimes = () => last; // for the browser tests and the console
}
