// The admin API, authenticated by the session cookie the login set. Requests that change
// something carry the X-Spendgate-UI header the server requires of cookie sessions.

export class ApiError extends Error {
  constructor(status, message, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

let onUnauthorized = () => {};

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-Spendgate-UI": "1", Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "The proxy did not answer. Is it still running?", "network_error");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    if (response.status === 401 && path !== "/ui/login") onUnauthorized();
    throw new ApiError(response.status, err.message || `${response.status} ${response.statusText}`, err.type);
  }
  return data;
}

export const get = (path, params) => {
  const query = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")) : null;
  return call("GET", query && String(query) ? `${path}?${query}` : path);
};
export const post = (path, body) => call("POST", path, body ?? {});
