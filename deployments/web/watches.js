// The Watches view: watch the screen in the form (where, rank, sectors, filters) with a
// webhook and/or apprise target, see every watch's delivery state and the recent events.
//
// Creating posts the form's scan fields as the watch's inline definition (POST
// /v1/watches); the answer's secret is shown once, here, and never fetched again. The list
// (GET /v1/watches) and the events (GET /v1/events?follow=false, the SSE text read with
// fetch, since EventSource cannot send the API key) refresh every REFRESH_MS. Everything
// shown goes in through textContent: names, URLs and symbols are data, never markup.

import { api, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;
const EVENTS_SHOWN = 50;
let lastSeq = 0;
const events = [];

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "—" : String(text);
  return td;
}

/** The SSE text of /v1/events as [{seq, event}] (only `event: watch` blocks). */
export function parseEvents(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let id = null, kind = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (kind === "watch" && id !== null && data.length) {
      out.push({ seq: Number(id), event: JSON.parse(data.join("\n")) });
    }
  }
  return out;
}

function renderWatches(watches) {
  const body = $("watch-list").tBodies[0];
  body.replaceChildren(...watches.map((w) => {
    const tr = document.createElement("tr");
    const state = w.state || {};
    const d = state.deliveries || {};
    const last = state.last_evaluation || {};
    const breakers = (state.targets || []).filter((t) => t.breaker !== "closed")
      .map((t) => `${t.url}: ${t.breaker}`).join("; ");
    tr.append(cell(w.name), cell(w.screen || "(inline)"),
              cell(w.targets.map((t) => t.url).join(", ") || "stream only"),
              cell(last.session), cell(state.events ?? 0), cell(d.pending ?? 0),
              cell(d.delivered ?? 0), cell(d.dead ?? 0), cell(breakers || "ok"));
    const td = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.dataset.watch = w.name;
    remove.addEventListener("click", () => removeWatch(w.name));
    td.append(remove);
    tr.append(td);
    return tr;
  }));
  $("watch-count").textContent = `${watches.length} watch${watches.length === 1 ? "" : "es"}`;
}

function renderEvents() {
  const body = $("watch-events").tBodies[0];
  body.replaceChildren(...events.slice(-EVENTS_SHOWN).reverse().map(({ seq, event: e }) => {
    const tr = document.createElement("tr");
    const rank = e.kind === "left" ? `was #${e.previous_rank}` :
      e.kind === "rank_moved" ? `#${e.previous_rank} → #${e.rank}` : `#${e.rank}`;
    tr.append(cell(seq), cell(e.session), cell(e.watch), cell(e.kind), cell(e.symbol),
              cell(rank), cell(e.row ? e.row.Close : e.row_state));
    return tr;
  }));
}

export async function refreshWatches() {
  try {
    const body = await (await api("/v1/watches")).json();
    renderWatches(body.watches);
    const text = await (await api(`/v1/events?follow=false&after=${lastSeq}`)).text();
    for (const item of parseEvents(text)) {
      events.push(item);
      lastSeq = Math.max(lastSeq, item.seq);
    }
    renderEvents();
  } catch (err) {
    showError(err.message, $("watch-error"));
  }
}

async function removeWatch(name) {
  try {
    await api(`/v1/watches/${encodeURIComponent(name)}`, { method: "DELETE" });
    await refreshWatches();
  } catch (err) {
    showError(err.message, $("watch-error"));
  }
}

/** `screen()`: the scan form as a ScanRequest body (app.js scanRequest). */
export function initWatches(screen) {
  $("watch-create").addEventListener("click", async () => {
    showError("", $("watch-error"));
    $("watch-secret").hidden = true;
    const { as_of_date: _asOf, ...definition } = screen();
    const body = { name: $("watch-name").value.trim(), definition };
    const webhook = $("watch-webhook").value.trim();
    const apprise = $("watch-apprise").value.trim();
    const moved = $("watch-rank-moved").value.trim();
    if (webhook) body.webhooks = [webhook];
    if (apprise) body.apprise = [apprise];
    if (moved) body.rank_moved = Number(moved);
    try {
      const made = await (await api("/v1/watches", { method: "POST",
                                                     body: JSON.stringify(body) })).json();
      $("watch-secret-value").textContent = made.secret;
      $("watch-secret").hidden = false;
      await refreshWatches();
    } catch (err) {
      showError(err.message, $("watch-error"));
    }
  });
  $("watch-refresh").addEventListener("click", refreshWatches);
  refreshWatches();
  setInterval(refreshWatches, REFRESH_MS);
}
