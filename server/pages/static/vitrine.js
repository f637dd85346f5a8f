// vitrine.js: a small browser client for Vitrine (https://github.com/…/vitrine, docs/browser.md).
// A plain ES module, no dependency, no build step. It sends events (batched, retried, each with
// its own id so a retry is never counted twice) and asks for a page's recommendations and slot
// variants in one call. It renders nothing: the storefront does.
//
//   import { Vitrine } from "/vitrine.js";
//   const vitrine = new Vitrine({ key: "pk_live_…" });            // same origin, or baseUrl
//   vitrine.view("sku-42", { category: "shoes/running" });
//   const page = await vitrine.page({ placements: ["home"], slots: ["home_hero"] });

const SESSION_KEY = "vitrine.session";
const USER_KEY = "vitrine.user";
const QUEUE_KEY = "vitrine.queue";
const MAX_QUEUE = 1000; // events kept while the network is down (oldest dropped beyond)

function newId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

function memoryStorage() {
  const data = new Map();
  return { getItem: (k) => (data.has(k) ? data.get(k) : null), setItem: (k, v) => data.set(k, String(v)),
           removeItem: (k) => data.delete(k) };
}

export class Vitrine {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl]   Vitrine's address ("" = this page's origin)
   * @param {string} [options.key]       a public API key (sent as `Authorization: Bearer …`)
   * @param {string} [options.userId]    the signed-in shopper, if any
   * @param {number} [options.flushMs]   how long events wait to be sent together (default 250)
   * @param {number} [options.maxBatch]  events per request (default 100; the server's limit is 500)
   * @param {Storage} [options.storage]  where the session id and unsent events survive a reload
   */
  constructor({ baseUrl = "", key = null, userId = null, flushMs = 250, maxBatch = 100, storage } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.key = key;
    this.flushMs = flushMs;
    this.maxBatch = maxBatch;
    try { this.storage = storage || globalThis.localStorage || memoryStorage(); } catch { this.storage = memoryStorage(); }
    this.sessionId = this.storage.getItem(SESSION_KEY) || newId();
    this.storage.setItem(SESSION_KEY, this.sessionId);
    this.userId = userId || this.storage.getItem(USER_KEY);
    this.queue = JSON.parse(this.storage.getItem(QUEUE_KEY) || "[]");
    this.timer = null;
    this.backoffMs = 0;
    this.sending = null;
    this.listeners = new Set();
    if (this.queue.length) this._schedule(0);
    if (globalThis.addEventListener) {
      // Back online, or leaving the page: send what is waiting.
      globalThis.addEventListener("online", () => this.flush());
      globalThis.addEventListener("pagehide", () => this.flush());
    }
  }

  /** The shopper signed in (or out, with null): their next events and answers are theirs. */
  login(userId) {
    this.userId = userId || null;
    if (this.userId) this.storage.setItem(USER_KEY, this.userId); else this.storage.removeItem(USER_KEY);
  }

  // -- events -------------------------------------------------------------------------------
  /** Queue one event; returns its id. Sent within `flushMs`, retried until Redis has it. */
  track(type, fields = {}) {
    const event = { event_id: newId(), session_id: this.sessionId, type, ts: Date.now(), ...fields };
    if (this.userId) event.user_id = this.userId;
    for (const k of Object.keys(event)) if (event[k] === undefined || event[k] === null) delete event[k];
    this.queue.push(event);
    if (this.queue.length > MAX_QUEUE) this.queue.splice(0, this.queue.length - MAX_QUEUE);
    this._save();
    this._schedule(this.backoffMs || this.flushMs);
    return event.event_id;
  }

  view(itemId, { category } = {}) { return this.track("view", { item_id: itemId, category }); }
  addToCart(itemId, { category, price, quantity } = {}) {
    return this.track("add_to_cart", { item_id: itemId, category, price, quantity });
  }
  removeFromCart(itemId, { category } = {}) { return this.track("remove_from_cart", { item_id: itemId, category }); }
  purchase(itemId, { category, price, quantity } = {}) {
    return this.track("purchase", { item_id: itemId, category, price, quantity });
  }
  categoryView(category) { return this.track("category_view", { category }); }
  search(query, { category } = {}) { return this.track("search", { query, category }); }

  /** Called with {accepted, pending} after each batch the server acknowledged. */
  onSent(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }

  get pending() { return this.queue.length; }

  /** Send what is queued now; resolves when the queue is empty or sending failed (it retries). */
  async flush() {
    if (this.sending) return this.sending;
    clearTimeout(this.timer);
    this.timer = null;
    this.sending = this._send().finally(() => { this.sending = null; });
    return this.sending;
  }

  async _send() {
    while (this.queue.length) {
      const batch = this.queue.slice(0, this.maxBatch);
      let resp;
      try {
        resp = await fetch(this._url("/v1/events"), { method: "POST", headers: this._headers(true),
                                                      body: JSON.stringify({ events: batch }), keepalive: true });
      } catch {
        return this._retry(); // offline, or the connection dropped: the batch stays queued
      }
      if (resp.status === 429 || resp.status >= 500) {
        const after = Number(resp.headers.get("Retry-After"));
        return this._retry(Number.isFinite(after) && after > 0 ? after * 1000 : 0);
      }
      // 200: stored (duplicates were stored before); 4xx: these events can never be stored
      // (the answer says why): either way they leave the queue.
      const ids = new Set(batch.map((e) => e.event_id));
      this.queue = this.queue.filter((e) => !ids.has(e.event_id));
      this._save();
      this.backoffMs = 0;
      let body = null;
      try { body = await resp.json(); } catch { /* not JSON: nothing more to report */ }
      if (!resp.ok && globalThis.console) console.warn("vitrine: events refused", resp.status, body);
      for (const listener of this.listeners) listener({ status: resp.status, body, pending: this.queue.length });
    }
  }

  _retry(afterMs = 0) {
    this.backoffMs = Math.min(Math.max(afterMs, (this.backoffMs || 250) * 2), 30000);
    this._schedule(this.backoffMs);
  }

  _schedule(ms) {
    if (this.timer === null) this.timer = setTimeout(() => { this.timer = null; this.flush(); }, ms);
  }

  _save() { try { this.storage.setItem(QUEUE_KEY, JSON.stringify(this.queue)); } catch { /* full: keep in memory */ } }

  // -- answers ------------------------------------------------------------------------------
  /** A page's recommendation placements and slot variants in one call (GET /v1/page). */
  page({ placements = [], slots = [], itemIds = [], category, k, exclude = [], channel = "web", page, attributes } = {}) {
    return this._get("/v1/page", { placement: placements, slot: slots, item_id: itemIds, category, k, exclude,
                                   channel, page, attributes: attributes && JSON.stringify(attributes) });
  }

  /** One placement's recommendations (GET /v1/recommendations). */
  recommendations({ placement = "home", itemIds = [], category, k, exclude = [] } = {}) {
    return this._get("/v1/recommendations", { placement, item_id: itemIds, category, k, exclude });
  }

  /** Slot variants only (GET /v1/variants). */
  variants(slots, { channel = "web", page, attributes } = {}) {
    return this._get("/v1/variants", { slot: slots, channel, page, attributes: attributes && JSON.stringify(attributes) });
  }

  similar(itemId, { k } = {}) { return this._get(`/v1/items/${encodeURIComponent(itemId)}/similar`, { k }); }
  trending({ category, k } = {}) { return this._get("/v1/trending", { category, k }); }

  async _get(path, params) {
    const query = new URLSearchParams();
    const shopper = { session_id: this.sessionId, user_id: this.userId };
    for (const [name, value] of Object.entries({ ...shopper, ...params })) {
      if (value === undefined || value === null || value === "") continue;
      for (const v of Array.isArray(value) ? value : [value]) query.append(name, String(v));
    }
    const resp = await fetch(this._url(path) + "?" + query.toString(), { headers: this._headers(false) });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const error = new Error(body.detail || `Vitrine answered ${resp.status}`);
      error.status = resp.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  _url(path) { return this.baseUrl + path; }

  _headers(json) {
    const headers = {};
    if (json) headers["Content-Type"] = "application/json";
    if (this.key) headers.Authorization = "Bearer " + this.key;
    return headers;
  }
}
