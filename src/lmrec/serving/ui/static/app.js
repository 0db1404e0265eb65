/* lmrec dashboard: what every page shares (the key, API calls, DOM helpers). No framework.
 *
 * The key lives in sessionStorage only and goes out as `Authorization: Bearer` on
 * the JSON API calls; pages are data-free HTML, so nothing is shown without a key the
 * server accepts. Text from the API is always set with textContent, never as HTML. */
"use strict";

const LM = (() => {
  const KEY = "lmrec.key";
  const page = document.body.dataset.page;

  /** The stored key: null when not logged in, "" on a server without keys. */
  function key() {
    return sessionStorage.getItem(KEY);
  }

  function setKey(value) {
    sessionStorage.setItem(KEY, value);
  }

  function logout() {
    sessionStorage.removeItem(KEY);
    location.assign("/ui/login");
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** A raw fetch of the API with the key (or `withKey`, at log-in) as a bearer token. */
  async function request(method, path, body, withKey) {
    const headers = { Accept: "application/json" };
    const k = withKey === undefined ? key() : withKey;
    if (k) headers.Authorization = "Bearer " + k;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, "network", "the server could not be reached (" + err.message + ")");
    }
    if (!response.ok) {
      let message = "HTTP " + response.status;
      let code = "error";
      try {
        const data = await response.json();
        if (data && data.error) {
          message = data.error.message;
          code = data.error.code;
        }
      } catch (_) {
        /* not JSON: keep the status */
      }
      throw new ApiError(response.status, code, message);
    }
    return response;
  }

  /** The JSON answer of an API call; throws ApiError with the server's message otherwise. */
  async function api(method, path, body, withKey) {
    const response = await request(method, path, body, withKey);
    return response.json();
  }

  /** A DOM element: attributes (class, dataset via data-*, on* handlers) and children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** Set a status line; `kind` "error" or "ok" colours it. */
  function say(node, text, kind) {
    node.textContent = text;
    node.classList.toggle("error", kind === "error");
    node.classList.toggle("ok", kind === "ok");
  }

  /** Show an API error in `node`, offering to log in again when the key was refused. */
  function fail(node, err) {
    const message = err instanceof ApiError && err.status ? err.message + " (HTTP " + err.status + ")" : err.message;
    say(node, message, "error");
    if (err instanceof ApiError && err.status === 401) {
      node.append(" ", el("a", { href: loginUrl() }, "Log in again"));
    }
  }

  function loginUrl() {
    return "/ui/login#next=" + encodeURIComponent(location.pathname + location.hash);
  }

  /** Marks the page as drawn: tests and the page-load benchmark wait for it. */
  function ready() {
    if (document.body.dataset.ready) return;
    performance.mark("lmrec-ready");
    document.body.dataset.ready = "1";
  }

  /** Run a page's `main` once a key is stored; without one, go to the log-in page. */
  function start(main) {
    if (key() === null) {
      location.replace(loginUrl());
      return;
    }
    const label = document.getElementById("session-label");
    label.textContent = key() ? "key …" + key().slice(-4) : "no key (open server)";
    document.getElementById("session").hidden = false;
    document.getElementById("logout").addEventListener("click", logout);
    Promise.resolve()
      .then(main)
      .catch((err) => {
        const notice = document.getElementById("notice");
        notice.hidden = false;
        fail(notice, err);
      })
      .finally(ready);
  }

  function hashParam(name) {
    return new URLSearchParams(location.hash.slice(1)).get(name);
  }

  function setHashParam(name, value) {
    const params = new URLSearchParams(location.hash.slice(1));
    params.set(name, value);
    history.replaceState(null, "", "#" + params.toString());
  }

  function when(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    return new Date(seconds * 1000).toLocaleString();
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value) && digits === undefined) return value.toLocaleString();
    return value.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 3 : digits });
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  /** Nested objects as (dotted key, printable value) pairs. */
  function flatten(value, prefix) {
    const out = [];
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) out.push(...flatten(v, prefix ? prefix + "." + k : k));
    } else {
      const show = (v) => (typeof v === "number" ? num(v, 4) : typeof v === "object" && v !== null ? JSON.stringify(v) : v);
      const text = Array.isArray(value) ? value.map(show).join(", ") : show(value);
      out.push([prefix || "value", text === null || text === undefined || text === "" ? "–" : String(text)]);
    }
    return out;
  }

  /** Fill a <dl> with (term, value) pairs; a value may be a Node. */
  function facts(dl, pairs) {
    clear(dl);
    for (const [term, value] of pairs) {
      dl.append(el("div", {}, el("dt", {}, term), el("dd", {}, value === null || value === undefined ? "–" : value)));
    }
  }

  /** A random id for events (crypto.randomUUID needs a secure context; this does not). */
  function randomId() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  /** Titles of items by id, from POST /v1/items/lookup (one call for all). */
  async function titles(ids) {
    const unique = [...new Set(ids.filter(Boolean))];
    if (!unique.length) return new Map();
    const found = await api("POST", "/v1/items/lookup", { item_ids: unique });
    return new Map(found.items.map((i) => [i.item_id, i.title]));
  }

  function itemLink(id, title) {
    return el("a", { href: "/ui/item#item=" + encodeURIComponent(id) }, title || id);
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  return {
    ApiError, api, bytes, clear, debounce, el, facts, fail, flatten, hashParam, itemLink,
    key, num, page, randomId, ready, request, say, setHashParam, setKey, start, titles, when,
  };
})();
