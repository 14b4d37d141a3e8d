// Saved screens and presets on the page (GET/PUT /v1/screens): the Screen menu fills the form
// from a screen's definition, a scan names the screen while the form still shows it unchanged
// (so the result and its cache carry the screen's version), "Save screen" stores the form as a
// new version. Also the Columns and functions list (GET /v1/screen/columns).

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
// definition fields the form shows; any other (sort_by, industries, ...) rides along unseen
const FORM_FIELDS = ["sectors", "signals", "min_tech_rating", "min_price", "min_dollar_volume",
                     "max_symbols", "where", "rank", "ascending", "columns"];
const DEFAULT_LIMIT = "500";

let screens = new Map(); // name -> screen (definition, version, preset, title, description)
let loaded = null;       // {name, hidden, modified}: the screen the form was filled from

/** Fill the menu from GET /v1/screens (presets, then saved screens), keeping the choice. */
export async function loadScreens() {
  const body = await (await api("/v1/screens")).json();
  screens = new Map(body.screens.map((s) => [s.name, s]));
  const select = $("screen");
  const chosen = select.value;
  const groups = [["Presets", true], ["Saved", false]].map(([label, preset]) => {
    const group = document.createElement("optgroup");
    group.label = label;
    group.append(...body.screens.filter((s) => s.preset === preset)
      .map((s) => new Option(`${s.name} (v${s.version})`, s.name)));
    return group;
  }).filter((g) => g.children.length);
  select.replaceChildren(select.options[0], ...groups);
  select.value = screens.has(chosen) ? chosen : "";
}

function setForm(form, definition) {
  const sectors = new Set(definition.sectors || []);
  for (const o of form.querySelector("#sectors").options) o.selected = sectors.has(o.value);
  const signals = new Set(definition.signals || []);
  for (const box of form.querySelectorAll("input[name=signal]")) box.checked = signals.has(box.value);
  for (const name of ["min_tech_rating", "min_price", "min_dollar_volume", "where", "rank"]) {
    form.elements[name].value = definition[name] ?? "";
  }
  form.elements.limit.value = definition.max_symbols ?? DEFAULT_LIMIT;
  form.elements.ascending.checked = !!definition.ascending;
  form.elements.columns.value = (definition.columns || []).join(", ");
}

function about() {
  const s = loaded && screens.get(loaded.name);
  if (!s) return "";
  const what = s.title ? `${s.title}: ${s.description}` : `saved ${s.created || ""}`;
  return loaded.modified ? `${s.name} v${s.version}, changed below: scans use the form's fields`
    : `${what} (v${s.version})`;
}

function choose(form) {
  const s = screens.get($("screen").value);
  if (!s) {
    loaded = null;
  } else {
    setForm(form, s.definition);
    const hidden = Object.fromEntries(Object.entries(s.definition)
      .filter(([k]) => !FORM_FIELDS.includes(k)));
    loaded = { name: s.name, hidden, modified: false };
  }
  $("screen-about").textContent = about();
}

/** What the loaded screen adds to a request: its fields the form cannot show, and its name
 * while the form still shows its definition unchanged. */
export function savedFields() {
  if (!loaded) return {};
  return loaded.modified ? { ...loaded.hidden } : { ...loaded.hidden, screen: loaded.name };
}

async function save(request) {
  const name = $("save-name").value.trim();
  const { as_of_date: _asOf, screen: _screen, ...definition } = request();
  const res = await api(`/v1/screens/${encodeURIComponent(name)}`,
                        { method: "PUT", body: JSON.stringify(definition) });
  const saved = await res.json();
  await loadScreens();
  $("screen").value = saved.name;
  loaded = { name: saved.name, hidden: loaded?.hidden || {}, modified: false };
  $("screen-about").textContent = about();
  $("save-result").textContent = saved.changed ? `saved ${saved.name} v${saved.version}`
    : `${saved.name} v${saved.version} already holds this screen`;
}

/** The Columns and functions list, filled the first time it is opened. */
async function fillCatalogue() {
  const body = await (await api("/v1/screen/columns")).json();
  $("catalogue-columns").replaceChildren(...body.columns.map((c) => {
    const code = document.createElement("code");
    code.textContent = c.name;
    code.title = `${c.kind}${c.history ? ", with history" : ""}${c.weekly ? ", weekly" : ""}`;
    return code;
  }));
  const rows = (id, items) => $(id).tBodies[0].replaceChildren(...items.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) tr.insertCell().textContent = text;
    return tr;
  }));
  rows("catalogue-functions", body.functions.map((f) => [f.signature, f.returns, f.doc]));
  rows("catalogue-operators", body.operators.map((o) => [o.syntax, o.doc]));
}

/** Wire the menu, the save button and the catalogue; `request()` is the form's scan body,
 * `fail(err)` shows an error. */
export function initSaved(form, request, fail) {
  $("screen").addEventListener("change", () => choose(form));
  form.addEventListener("input", (e) => {
    if (!loaded || loaded.modified || ["screen", "save-name"].includes(e.target.id)
        || e.target.closest("#validate-options")) return;
    loaded.modified = true;
    $("screen-about").textContent = about();
  });
  $("save-screen").addEventListener("click", () => {
    $("save-result").textContent = "";
    save(request).catch(fail);
  });
  $("catalogue").addEventListener("toggle", () => {
    if ($("catalogue").open && !$("catalogue-columns").children.length) fillCatalogue().catch(fail);
  });
  window.technicScreens = () => ({ screens: [...screens.keys()], loaded }); // tests, console
}
