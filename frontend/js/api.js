/* The gateway's REST API. Paths are relative to the page's origin (the gateway serves this page at
   /ui); `?api=http://host:8000` points the page at another gateway, e.g. when it is opened from
   file:// or from a static server on another port (that gateway's SDG_CORS_ORIGINS must allow the
   page's origin; "null" for file://). A gateway with API keys on answers 401 without one: the
   key prompt asks for it (key-prompt.js), and the call is made again with it. */
(function (SDG) {
  'use strict';

  function resolveBase() {
    const override = new URLSearchParams(window.location.search).get('api');
    if (override) return override.replace(/\/+$/, '');
    // A page opened from disk has no origin to be relative to; the gateway's default address is
    // the one useful guess.
    if (window.location.protocol === 'file:') return 'http://localhost:8000';
    return '';
  }

  const base = resolveBase();

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** JSON.parse that keeps integers beyond 2^53 (seeds are uint64) as their exact digits, using
      the reviver's source text where the browser provides it (Chromium 114+). */
  function parseJson(text) {
    return JSON.parse(text, (key, value, context) => (
      typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value) && context
        ? context.source : value));
  }

  function url(path) {
    return base + path;
  }

  /** Turns a FastAPI error body into one readable message: 400s carry a string naming the field,
      422s a list of pydantic errors with a location each. */
  function describeError(body, response) {
    const detail = body && typeof body === 'object' && 'detail' in body ? body.detail : body;
    if (Array.isArray(detail)) {
      return detail.map((item) => {
        if (!item || typeof item !== 'object') return String(item);
        const where = (item.loc || []).filter((part) => part !== 'body').join('.');
        return where ? `${where}: ${item.msg}` : item.msg;
      }).join('\n');
    }
    if (typeof detail === 'string' && detail) return detail;
    if (detail && typeof detail === 'object') return JSON.stringify(detail);
    return `${response.status} ${response.statusText}`.trim();
  }

  /** fetch() with the API key, asking for one on a 401 and trying again with it. */
  async function keyedFetch(target, init) {
    for (;;) {
      const key = SDG.keyPrompt.current();
      const headers = { ...init.headers, ...(key ? { 'X-API-Key': key } : {}) };
      let response;
      try {
        response = await fetch(target, { ...init, headers });
      } catch (err) {
        throw new ApiError(0, `Cannot reach the gateway at ${base || window.location.origin} (${err.message})`, null);
      }
      if (response.status !== 401) return response;
      await SDG.keyPrompt.ask(key);
    }
  }

  /** `path` with the key as ?api_key=, for what the browser fetches by URL (EventSource, <img>,
      download links), which cannot send a header; the gateway takes it on those routes only. */
  function keyedUrl(path) {
    const key = SDG.keyPrompt.current();
    return key ? `${url(path)}?api_key=${encodeURIComponent(key)}` : url(path);
  }

  async function send(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await keyedFetch(url(path), init);
    const text = await response.text();
    let data = text;
    try {
      data = text ? parseJson(text) : null;
    } catch (_) {
      // Not JSON (a proxy's HTML error page, say): keep the text so the message shows it.
    }
    if (!response.ok) throw new ApiError(response.status, describeError(data, response), data);
    return data;
  }

  /** POST of a multipart form (a file upload); the browser sets its Content-Type. */
  async function upload(path, form) {
    const response = await keyedFetch(url(path), { method: 'POST', headers: { Accept: 'application/json' }, body: form });
    const text = await response.text();
    let data = text;
    try {
      data = text ? parseJson(text) : null;
    } catch (_) {
      // Not JSON: the message shows the text.
    }
    if (!response.ok) throw new ApiError(response.status, describeError(data, response), data);
    return data;
  }

  /** GET /health. A degraded gateway answers 500 with the same JSON body, so the body is returned
      whatever the status; only an unreachable gateway or a body that is not JSON throws. */
  async function health() {
    let response;
    try {
      response = await fetch(url('/health'), { headers: { Accept: 'application/json' } });
    } catch (err) {
      throw new ApiError(0, `Cannot reach the gateway at ${base || window.location.origin} (${err.message})`, null);
    }
    const text = await response.text();
    try {
      return { httpStatus: response.status, body: parseJson(text) };
    } catch (_) {
      throw new ApiError(response.status, `/health answered ${response.status} without JSON: ${text.slice(0, 200)}`, text);
    }
  }

  /** Path of one file of a job's output; each path segment is encoded, the slashes kept. */
  function filePath(jobId, path) {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    return `/jobs/${encodeURIComponent(jobId)}/files/${encoded}`;
  }

  function fileUrl(jobId, path) {
    return keyedUrl(filePath(jobId, path));
  }

  /** The whole finished output as one ZIP (GET /jobs/{id}/archive). */
  function archiveUrl(jobId) {
    return keyedUrl(`/jobs/${encodeURIComponent(jobId)}/archive`);
  }

  /** A job's event stream (GET /jobs/{id}/events), for EventSource. */
  function eventsUrl(jobId) {
    return keyedUrl(`/jobs/${encodeURIComponent(jobId)}/events`);
  }

  async function fileText(jobId, path) {
    const response = await keyedFetch(url(filePath(jobId, path)), {});
    if (!response.ok) throw new ApiError(response.status, `${path}: ${response.status} ${response.statusText}`, null);
    return response.text();
  }

  SDG.api = {
    base,
    url,
    parseJson,
    fileUrl,
    archiveUrl,
    eventsUrl,
    fileText,
    health,
    ApiError,
    get: (path) => send('GET', path),
    post: (path, body) => send('POST', path, body),
    upload,
    delete: (path) => send('DELETE', path),
  };
})(window.SDG = window.SDG || {});
