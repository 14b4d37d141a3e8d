// The results table: sort in arrays, render only the current page, CSV from the rows.
//
// `rows` are the scan's row objects as the API sent them. Sorting builds an index permutation
// once per click (numbers first by value, null/NaN last; text by localeCompare), and a page
// render creates at most `pageSize` <tr> elements, so 5,000 rows cost one sort and ~50 rows of
// DOM. Every value goes into the DOM through textContent.

const noNegZero = (s) => (Number(s) === 0 ? s.replace("-", "") : s); // "-0.0" -> "0.0"
const pct = (d) => (v) => noNegZero((v * 100).toFixed(d)) + "%";
const fixed = (d) => (v) => noNegZero(v.toFixed(d));

// key, header, formatter (null: text), optional CSS hook
export const COLUMNS = [
  { key: "Symbol", label: "Symbol" },
  { key: "Sector", label: "Sector" },
  { key: "Close", label: "Close", fmt: fixed(2) },
  { key: "TechRating", label: "TechRating", fmt: fixed(1), signed: true },
  { key: "Signal", label: "Signal", rank: ["Strong Short", "Short", "Avoid", "Long",
                                           "Strong Long"] }, // sorts by strength, not A-Z
  { key: "Alpha5d", label: "Alpha 5d", fmt: pct(2), signed: true },
  { key: "Alpha10d", label: "Alpha 10d", fmt: pct(2), signed: true },
  { key: "RSI", label: "RSI", fmt: fixed(1) },
  { key: "MACD_hist", label: "MACD hist", fmt: fixed(3), signed: true },
  { key: "ATR_pct", label: "ATR %", fmt: pct(2) },
  { key: "Volume_ratio", label: "Vol ratio", fmt: fixed(2) },
  { key: "mom_21", label: "Mom 21", fmt: pct(1), signed: true },
  { key: "mom_63", label: "Mom 63", fmt: pct(1), signed: true },
  { key: "quality_flags", label: "Quality flags" },
];

// the result columns the API always sends (DESIGN.md's and the extra ones): a row key
// outside them (a chosen column, one the where/rank read, RankValue) gets a column of its own
const CONTRACT = new Set(["Symbol", "Sector", "Industry", "Close", "Volume", "RSI", "MACD",
  "MACD_signal", "MACD_hist", "BB_width", "ATR_pct", "Volume_ratio", "mom_21", "mom_63",
  "mom_126", "TechRating", "Signal", "Alpha5d", "Alpha10d", "Name", "AlphaScore", "mom_5",
  "SMA20", "SMA50", "SMA200", "dist_high_20", "DollarVolume", "Bars", "LastDate",
  "Incomplete", "Source", "quality_flags"]);
const general = (v) => noNegZero(Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4));

/** The columns to show for `rows`: of the contract's result, COLUMNS, then every other key
 *  the rows carry (columns the where/rank read, RankValue); of chosen columns (a request's
 *  `columns`), every key in the API's order. */
export function columnsFor(rows) {
  const first = rows[0] || {};
  const chosen = rows.length > 0 && [...CONTRACT].some((k) => !(k in first));
  const known = chosen ? [] : COLUMNS.filter((c) => c.key === "Symbol" || c.key in first);
  const keys = new Set(known.map((c) => c.key));
  const more = [];
  for (const key of Object.keys(first)) {
    if (keys.has(key) || (!chosen && CONTRACT.has(key))) continue;
    const col = COLUMNS.find((c) => c.key === key);
    const text = rows.some((r) => typeof r[key] === "string");
    more.push(col || { key, label: key, fmt: text ? undefined : general });
  }
  return [...known, ...more];
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

export function formatCell(col, value) {
  if (value === null || value === undefined || value === "") return "";
  if (col.fmt) return isNum(value) ? col.fmt(value) : "—";
  return String(value);
}

/** Row indices of `rows` ordered by `key` (stable; null, NaN and blanks always last);
 *  `rank` (optional) lists a text column's values from low to high. */
export function sortIndex(rows, key, ascending, rank) {
  const n = rows.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const value = rank ? (r) => (rank.includes(r[key]) ? rank.indexOf(r[key]) : NaN)
    : (r) => (isNum(r[key]) ? r[key] : NaN);
  const numeric = rank || rows.some((r) => isNum(r[key]));
  const dir = ascending ? 1 : -1;
  if (numeric) {
    const vals = new Float64Array(n);
    for (let i = 0; i < n; i++) vals[i] = value(rows[i]);
    idx.sort((a, b) => {
      const x = vals[a], y = vals[b];
      if (Number.isNaN(x) || Number.isNaN(y)) {
        return Number.isNaN(x) - Number.isNaN(y) || a - b;
      }
      return (x - y) * dir || a - b;
    });
  } else {
    const vals = rows.map((r) => (r[key] == null ? "" : String(r[key])));
    idx.sort((a, b) => {
      const x = vals[a], y = vals[b];
      if (!x || !y) return (!x) - (!y) || a - b;
      return x.localeCompare(y) * dir || a - b;
    });
  }
  return idx;
}

export class ResultsTable {
  /** `els`: {table, prev, next, pageInfo, pageSize}; `onSymbol(symbol)` opens a chart. */
  constructor(els, onSymbol) {
    this.els = els;
    this.onSymbol = onSymbol;
    this.rows = [];
    this.order = new Uint32Array(0);
    this.sort = null; // {key, ascending}
    this.page = 0;
    this.pageSize = Number(els.pageSize?.value || 50);
    els.prev?.addEventListener("click", () => this.goto(this.page - 1));
    els.next?.addEventListener("click", () => this.goto(this.page + 1));
    els.pageSize?.addEventListener("change", () => {
      this.pageSize = Number(els.pageSize.value);
      this.goto(0);
    });
  }

  /** Show `rows` in the API's order (the scan's ranking) from the first page. */
  setRows(rows) {
    this.rows = rows;
    this.columns = columnsFor(rows);
    this.order = Uint32Array.from(rows.keys());
    this.sort = null;
    this.renderHead();
    this.goto(0);
  }

  sortBy(key) {
    const col = this.columns.find((c) => c.key === key) || {};
    const ascending = this.sort?.key === key ? !this.sort.ascending
      : !(col.fmt || col.rank); // numbers and signals start high-to-low, text A-Z
    this.sort = { key, ascending };
    this.order = sortIndex(this.rows, key, ascending, col.rank);
    this.renderHead();
    this.goto(0);
  }

  pages() {
    return Math.max(1, Math.ceil(this.rows.length / this.pageSize));
  }

  goto(page) {
    this.page = Math.min(Math.max(0, page), this.pages() - 1);
    this.renderBody();
  }

  renderHead() {
    const tr = document.createElement("tr");
    for (const col of this.columns) {
      const th = document.createElement("th");
      th.textContent = col.label;
      th.dataset.key = col.key;
      th.tabIndex = 0;
      th.title = `Sort by ${col.label}`;
      if (col.fmt) th.className = "num";
      if (this.sort?.key === col.key) {
        th.setAttribute("aria-sort", this.sort.ascending ? "ascending" : "descending");
      }
      const go = () => this.sortBy(col.key);
      th.addEventListener("click", go);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
      tr.append(th);
    }
    this.els.table.tHead.replaceChildren(tr);
  }

  renderBody() {
    const start = this.page * this.pageSize;
    const end = Math.min(this.rows.length, start + this.pageSize);
    const frag = document.createDocumentFragment();
    for (let i = start; i < end; i++) frag.append(this.renderRow(this.rows[this.order[i]]));
    this.els.table.tBodies[0].replaceChildren(frag);
    if (this.els.pageInfo) {
      this.els.pageInfo.textContent = this.rows.length
        ? `${start + 1}–${end} of ${this.rows.length} (page ${this.page + 1}/${this.pages()})`
        : "no rows";
    }
    if (this.els.prev) this.els.prev.disabled = this.page === 0;
    if (this.els.next) this.els.next.disabled = this.page >= this.pages() - 1;
  }

  renderRow(row) {
    const tr = document.createElement("tr");
    for (const col of this.columns) {
      const td = document.createElement("td");
      const value = row[col.key];
      td.dataset.key = col.key;
      if (col.key === "Symbol") {
        const a = document.createElement("a");
        a.href = "#" + encodeURIComponent(String(value));
        a.textContent = String(value);
        a.addEventListener("click", (e) => { e.preventDefault(); this.onSymbol(String(value)); });
        td.append(a);
      } else if (col.key === "quality_flags") {
        for (const flag of String(value ?? "").split(/[,;|\s]+/).filter(Boolean)) {
          const span = document.createElement("span");
          span.className = "flag";
          span.textContent = flag;
          td.append(span);
        }
      } else {
        td.textContent = formatCell(col, value);
        if (col.fmt) td.className = "num";
        if (col.signed && isNum(value) && value !== 0) td.classList.add(value > 0 ? "pos" : "neg");
        if (col.key === "Signal" && value) {
          td.className = "sig-" + String(value).toLowerCase().replace(/\s+/g, "-");
        }
      }
      tr.append(td);
    }
    return tr;
  }

  /** All rows and all columns the API sent, in the current order, as CSV text. */
  csv() {
    const keys = [];
    for (const r of this.rows.slice(0, 50)) for (const k of Object.keys(r)) {
      if (!keys.includes(k)) keys.push(k);
    }
    const lines = [keys.map(csvCell).join(",")];
    for (const i of this.order) lines.push(keys.map((k) => csvCell(this.rows[i][k])).join(","));
    return lines.join("\r\n") + "\r\n";
  }
}

function csvCell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s; // no formulas when opened in a spreadsheet
  return /[",\r\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
}
