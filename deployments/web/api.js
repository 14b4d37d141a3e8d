// The API client of the page: every request adds the X-API-Key the user typed (kept in
// localStorage) and turns a non-2xx answer into an ApiError carrying the API's own message
// (a 422's `detail` entries: field, message; a 401's text), shown by `showError`.

export const KEY_STORE = "technic.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

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
    throw new ApiError(res.status, describeError(res.status, body || res.statusText));
  }
  return res;
}

export function showError(message, box = document.getElementById("error")) {
  box.textContent = message;
  box.hidden = !message;
}

