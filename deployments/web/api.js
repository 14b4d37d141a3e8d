// The API client of the page: every request adds the X-API-Key the user typed (kept in
// localStorage) and turns a non-2xx answer into an ApiError carrying the API's own message
// (a 422's `detail` entries: field, message; a 401's text), shown by `showError`.

export const KEY_STORE = "technic.apiKey";

export class ApiError extends Error {
  /** `entries`: the 422's detail entries (field, msg, and for expressions line, column). */
  constructor(status, message, entries = []) {
    super(message);
    this.status = status;
    this.entries = entries;
  }
}

const entriesOf = (body) =>
  (body && typeof body === "object" && Array.isArray(body.detail) ? body.detail : []);

/** The API's error body as one readable message. */
export function describeError(status, body) {
  const detail = body && typeof body === "object" ? body.detail : body;
  let text;
  if (Array.isArray(detail)) {
    text = detail.map((d) => {
      const field = d.field || (Array.isArray(d.loc) ? d.loc.slice(1).join(".") : "");
      return (field ? field + ": " : "") + (d.msg || JSON.stringify(d));
    }).join("\n");
  } else if (detail) {
    text = typeof detail === "string" ? detail : JSON.stringify(detail);
  } else {
    text = "no details";
  }
  if (body && body.error_id) text += ` (error id ${body.error_id})`;
  return `Error ${status}: ${text}`;
}

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

/** fetch() with the API key; resolves to the Response when ok, else throws ApiError. */
export async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const key = apiKey();
  if (key && !/^[\x20-\x7e]*$/.test(key)) {  // fetch() refuses other header characters
    throw new ApiError(0, "The API key can only contain printable ASCII characters; " +
                          "paste the key as it was issued.");
  }
  if (key) headers.set("X-API-Key", key);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  let res;
  try {
    res = await fetch(path, { ...init, headers });
  } catch (err) {
    throw new ApiError(0, `Cannot reach the API (${err.message}). Is the server running?`);
  }
  if (!res.ok) {
    const text = await res.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* not JSON: show the text */ }
    throw new ApiError(res.status, describeError(res.status, body || res.statusText),
                       entriesOf(body));
  }
  return res;
}

/** POST an NDJSON stream (/v1/scan/stream, /v1/validate/stream) and read it line by line:
 * progress events go to `onProgress`; resolves to the result event, throws the error event. */
export async function streamJSON(path, body, onProgress) {
  const res = await api(path, { method: "POST", body: JSON.stringify(body) });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let result = null;
  const handle = (line) => {
    if (!line.trim()) return;
    const event = JSON.parse(line);
    if (event.event === "progress") onProgress(event);
    else if (event.event === "error") {
      throw new ApiError(event.status, describeError(event.status, event), entriesOf(event));
    } else if (event.event === "result") result = event;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      handle(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  }
  handle(buffer + decoder.decode());
  if (!result) throw new ApiError(0, `The stream of ${path} ended without a result.`);
  return result;
}

export function showError(message, box = document.getElementById("error")) {
  box.textContent = message;
  box.hidden = !message;
}

