// The screen's expression boxes (where, rank): what they add to a request, and the API's
// errors shown at their place — the line with a caret under the column the parser named, the
// cursor put there — so "unknown column 'RSII' at 1:1 — did you mean RSI?" points at RSII.

const $ = (id) => document.getElementById(id);
export const EXPRESSIONS = ["where", "rank"];

/** The where/rank/ascending/columns part of a scan or validate request (empty boxes left
 *  out). */
export function screenFields(form) {
  const body = {};
  for (const name of EXPRESSIONS) {
    const v = form.elements[name].value.trim();
    if (v) body[name] = v;
  }
  if (form.elements.ascending.checked) body.ascending = true;
  const columns = columnList(form.elements.columns.value);
  if (columns.length) body.columns = columns;
  return body;
}

/** The Columns box as a list of names (commas or spaces between them). */
export function columnList(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** Offset of 1-based (line, column) in `text`, clamped to its length. */
export function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

/** The offending line with a caret under the column, as plain text. */
export function caretText(text, line, column, message) {
  const shown = text.split("\n")[line - 1] ?? "";
  return `${shown}\n${" ".repeat(Math.max(0, column - 1))}^ ${message}`;
}

export function clearExpressionErrors() {
  for (const name of EXPRESSIONS) {
    $(name).removeAttribute("aria-invalid");
    const box = $(`${name}-error`);
    box.textContent = "";
    box.hidden = true;
  }
}

/** Show an ApiError's expression entries under their boxes; true when any was shown. */
export function showExpressionErrors(err) {
  let shown = false;
  for (const entry of err.entries || []) {
    if (!EXPRESSIONS.includes(entry.field)) continue;
    const input = $(entry.field);
    const box = $(`${entry.field}-error`);
    const message = entry.error || entry.msg || String(entry.message);
    input.setAttribute("aria-invalid", "true");
    if (Number.isInteger(entry.line) && Number.isInteger(entry.column)) {
      box.textContent = caretText(input.value, entry.line, entry.column,
                                  entry.message + (entry.hint ? ` — ${entry.hint}` : ""));
      const at = offsetOf(input.value, entry.line, entry.column);
      input.focus();
      input.setSelectionRange(at, Math.min(input.value.length, at + 1));
    } else {
      box.textContent = message;
    }
    box.hidden = false;
    shown = true;
  }
  return shown;
}
