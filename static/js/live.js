/* Live updates over /ws/.
 *
 * The channel layer delivers at most once and drops messages when a socket falls behind,
 * so the page never trusts the stream alone: every message carries a sequence number per
 * (source, group); on a gap, and after every reconnect, the page reloads its state from
 * the API (the `resync` callback). High-rate updates (prices) are coalesced to at most one
 * paint per animation frame.
 *
 *   Live.start({
 *     groups: ["events", "bars.AAPL"],
 *     on: { events: (msg) => ..., "bars.*": (msg) => ... },   // by group (or prefix.*)
 *     resync: async () => ...,                                  // reload state from the API
 *   });
 */
(function () {
  "use strict";

  const PING_EVERY_MS = 25000;
  const MAX_BACKOFF_MS = 15000;

  const state = {
    socket: null,
    groups: [],
    handlers: {},
    resync: null,
    lastSeq: new Map(), // "source|group" -> last seq seen
    attempts: 0,
    connectedOnce: false,
    pingTimer: null,
    resyncPending: false,
    resyncAgain: false,
    stats: { received: 0, gaps: 0, resyncs: 0, reconnects: 0 },
  };

  function setStatus(name) {
    document.querySelectorAll("[data-live-status]").forEach((el) => {
      el.dataset.state = name;
      el.title = "Live updates: " + name;
    });
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + "/ws/";
  }

  function handlerFor(group) {
    if (state.handlers[group]) return state.handlers[group];
    const dot = group.indexOf(".");
    if (dot > 0 && state.handlers[group.slice(0, dot) + ".*"]) return state.handlers[group.slice(0, dot) + ".*"];
    return state.handlers["*"] || null;
  }

  /* One resync at a time; requests that arrive while one runs are merged into a single
   * follow-up run, so the last change is always reflected. */
  function requestResync(reason) {
    if (!state.resync) return;
    if (state.resyncPending) { state.resyncAgain = true; return; }
    state.resyncPending = true;
    state.stats.resyncs += 1;
    Promise.resolve()
      .then(() => state.resync(reason))
      .catch((err) => console.warn("live: resync failed", err))
      .finally(() => {
        state.resyncPending = false;
        if (state.resyncAgain) { state.resyncAgain = false; requestResync("merged"); }
      });
  }

  /* Returns false when this message shows that an earlier one was lost. */
  function checkSequence(msg) {
    if (typeof msg.seq !== "number" || !msg.group) return true;
    const key = (msg.source || "") + "|" + msg.group;
    const last = state.lastSeq.get(key);
    state.lastSeq.set(key, msg.seq);
    // The first message of a publisher we have not heard from sets the baseline (the page
    // was rendered from the database just before); after that any jump is a lost message.
    if (last === undefined) return true;
    return msg.seq === last + 1 || msg.seq <= last;
  }

  function onMessage(event) {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (!msg || !msg.type || msg.type === "pong" || msg.type === "subscribed" || msg.type === "unsubscribed") return;
    if (msg.type === "error") { console.warn("live:", msg.error); return; }
    state.stats.received += 1;
    const inOrder = checkSequence(msg);
    const handler = handlerFor(msg.group || "");
    if (handler) {
      try { handler(msg); } catch (e) { console.error("live: handler failed", e); }
    }
    if (!inOrder) {
      state.stats.gaps += 1;
      requestResync("gap");
    }
  }

  function connect() {
    setStatus("connecting");
    const socket = new WebSocket(socketUrl());
    let opened = false;
    state.socket = socket;
    socket.onopen = () => {
      opened = true;
      const reconnect = state.connectedOnce;
      state.attempts = 0;
      setStatus("live");
      socket.send(JSON.stringify({ type: "subscribe", groups: state.groups }));
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
      if (reconnect) {
        // Whatever happened while we were away is unknown: reload, and start counting afresh.
        state.stats.reconnects += 1;
        state.lastSeq.clear();
        requestResync("reconnect");
      }
      state.connectedOnce = true;
    };
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      clearInterval(state.pingTimer);
      setStatus("offline");
      if (event.code === 4401) { location.reload(); return; } // signed out: go to the login page
      if (!opened && state.attempts >= 2) {
        // A refused handshake looks like a network error; if the session has ended the
        // API says so, and a reload leads to the sign-in page.
        fetch("/api/", { credentials: "same-origin" })
          .then((r) => { if (r.status === 401 || r.status === 403) location.reload(); })
          .catch(() => {});
      }
      // Exponential backoff with jitter so a restarted server is not stampeded.
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** state.attempts) * (0.5 + Math.random() / 2);
      state.attempts += 1;
      setTimeout(connect, delay);
    };
    socket.onerror = () => socket.close();
  }

  /* Coalescing: many updates for the same key between two frames become one paint. */
  const pending = new Map();
  let frameRequested = false;
  function coalesce(key, fn) {
    pending.set(key, fn);
    if (frameRequested) return;
    frameRequested = true;
    const flush = () => {
      frameRequested = false;
      const jobs = Array.from(pending.values());
      pending.clear();
      jobs.forEach((job) => { try { job(); } catch (e) { console.error(e); } });
    };
    // Background tabs get no animation frames; fall back to a timer so state stays fresh.
    if (document.hidden) setTimeout(flush, 250); else requestAnimationFrame(flush);
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response.json();
  }

  /* Reload the page's server-rendered live regions (elements with data-live-region and an id). */
  async function refreshRegions() {
    const response = await fetch(location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live-region][id]").forEach((el) => {
      const fresh = doc.getElementById(el.id);
      if (fresh) el.innerHTML = fresh.innerHTML;
    });
  }

  function start(options) {
    state.groups = options.groups || [];
    state.handlers = options.on || {};
    state.resync = options.resync || null;
    if (state.groups.length) connect();
  }

  window.Live = { start, coalesce, getJSON, refreshRegions, requestResync, stats: state.stats, _state: state };
})();
