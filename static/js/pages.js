/* Per-page live wiring. The server renders every page fully; this only patches it.
 * <body data-page="..." data-live-groups='["events", ...]'> selects what to listen to. */
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page || "";
  let groups = [];
  try { groups = JSON.parse(body.dataset.liveGroups || "[]"); } catch (e) { groups = []; }

  const fmt = (value, digits) => {
    if (value === null || value === undefined || value === "") return "—";
    const n = Number(value);
    if (!isFinite(n)) return String(value);
    return n.toLocaleString(undefined, { minimumFractionDigits: digits ?? 2, maximumFractionDigits: digits ?? 2 });
  };
  const signClass = (value) => (Number(value) > 0 ? "up" : Number(value) < 0 ? "down" : "");
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  /* Run fn once, `ms` after the first of a series of calls (calls meanwhile are merged).
   * Unlike a debounce this never starves: a steady stream still refreshes every `ms`. */
  function throttle(fn, ms) {
    let timer = null;
    return () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; fn(); }, ms);
    };
  }
  const refreshRegions = throttle(() => window.Live.refreshRegions(), 300);

  function barTime(p) {
    if (typeof p.time === "number") return p.time;
    const iso = p.timestamp || p.ts || p.t;
    return iso ? Math.floor(Date.parse(iso) / 1000) : null;
  }

  // --- overview ------------------------------------------------------------------------------
  function eventItem(e) {
    const li = document.createElement("li");
    li.dataset.eventId = e.id;
    li.className = "flash";
    li.innerHTML =
      '<span class="when">' + esc(time(e.created_at)) + "</span>" +
      '<span><span class="badge ' + esc(e.severity) + '">' + esc(e.severity) + "</span> " +
      "<code>" + esc(e.event_type) + "</code>" + (e.strategy ? ' <span class="muted">' + esc(e.strategy) + "</span>" : "") +
      "</span>" + '<span class="what">' + esc(e.message) + "</span>";
    return li;
  }

  function prependEvent(e, limit) {
    const feed = document.getElementById("event-feed");
    if (!feed || !e || feed.querySelector('[data-event-id="' + e.id + '"]')) return;
    const empty = feed.querySelector(".empty");
    if (empty) empty.remove();
    feed.prepend(eventItem(e));
    while (feed.children.length > (limit || 30)) feed.lastElementChild.remove();
  }

  function renderOverview(data) {
    const a = data.account;
    const engineEl = document.getElementById("engine-state");
    if (engineEl && data.engine) {
      engineEl.className = "badge " + (data.engine.running ? "active" : "warning");
      engineEl.textContent = "engine " + (data.engine.running ? "running" : (data.engine.state || "not running")) +
        (data.engine.broker ? " · " + data.engine.broker : "");
    }
    const set = (id, html, cls) => {
      const el = document.getElementById(id);
      if (el) { el.innerHTML = html; if (cls !== undefined) el.className = "stat " + cls; }
    };
    set("equity", fmt(a.equity));
    set("day-pnl", fmt(a.day_pnl), signClass(a.day_pnl));
    set("unrealized-pnl", fmt(a.unrealized_pnl), signClass(a.unrealized_pnl));
    set("open-count", String(a.open_positions));

    const pos = document.getElementById("positions-body");
    if (pos) {
      pos.innerHTML = data.positions.length
        ? data.positions.map((p) =>
            '<tr data-symbol="' + esc(p.symbol) + '" data-qty="' + esc(p.quantity) + '" data-entry="' + esc(p.entry_price) +
            '" data-dir="' + esc(p.direction) + '">' +
            '<td><a href="/trades/' + p.trade_id + '/">' + esc(p.symbol) + "</a></td>" +
            "<td>" + esc(p.strategy) + "</td><td>" + esc(p.direction) + "</td>" +
            '<td class="num">' + fmt(p.quantity, 0) + '</td><td class="num">' + fmt(p.entry_price) + "</td>" +
            '<td class="num" data-price>' + fmt(p.last_price) + "</td>" +
            '<td class="num ' + signClass(p.unrealized_pnl) + '" data-upnl>' + fmt(p.unrealized_pnl) + "</td></tr>").join("")
        : '<tr><td colspan="7" class="empty">No open positions</td></tr>';
    }
    const strat = document.getElementById("strategies-body");
    if (strat) {
      strat.querySelectorAll("tr[data-strategy-id]").forEach((row) => {
        const s = data.strategies.find((x) => String(x.id) === row.dataset.strategyId);
        if (!s) return;
        const badge = row.querySelector("[data-state]");
        if (badge) { badge.className = "badge " + s.state; badge.textContent = s.state; }
        const open = row.querySelector("[data-open-trades]");
        if (open) open.textContent = s.open_trades;
      });
    }
    const sig = document.getElementById("signals-body");
    if (sig) {
      sig.innerHTML = data.signals.length
        ? data.signals.map((s) =>
            '<tr><td class="mono">' + esc(time(s.timestamp)) + "</td><td>" + esc(s.strategy) + "</td>" +
            '<td><a href="/stocks/' + esc(s.symbol) + '/">' + esc(s.symbol) + "</a></td>" +
            '<td><span class="badge">' + esc(s.signal_type) + '</span></td><td class="num">' + fmt(s.price) + "</td>" +
            "<td>" + esc((s.reasons || []).join("; ")) + "</td></tr>").join("")
        : '<tr><td colspan="6" class="empty">No signals yet</td></tr>';
    }
    const feed = document.getElementById("event-feed");
    if (feed) {
      feed.innerHTML = "";
      data.events.slice().reverse().forEach((e) => prependEvent(e));
      feed.querySelectorAll(".flash").forEach((li) => li.classList.remove("flash"));
      if (!data.events.length) feed.innerHTML = '<li class="empty">No events yet</li>';
    }
    subscribePositionPrices(data.positions.map((p) => p.symbol));
  }

  function updatePrice(symbol, close) {
    document.querySelectorAll('#positions-body tr[data-symbol="' + CSS.escape(symbol) + '"]').forEach((row) => {
      const qty = Number(row.dataset.qty), entry = Number(row.dataset.entry);
      const upnl = (close - entry) * qty * (row.dataset.dir === "short" ? -1 : 1);
      row.querySelector("[data-price]").textContent = fmt(close);
      const cell = row.querySelector("[data-upnl]");
      cell.textContent = fmt(upnl);
      cell.className = "num " + signClass(upnl);
    });
  }

  let priceGroups = new Set();
  function subscribePositionPrices(symbols) {
    const wanted = new Set(symbols.map((s) => "bars." + s));
    const socket = window.Live._state.socket;
    const added = [...wanted].filter((g) => !priceGroups.has(g));
    priceGroups = wanted;
    if (added.length && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "subscribe", groups: added }));
      window.Live._state.groups = [...new Set([...window.Live._state.groups, ...added])];
    }
  }

  async function resyncOverview() {
    renderOverview(await window.Live.getJSON("/api/overview/"));
  }
  const resyncOverviewSoon = throttle(() => window.Live.requestResync("update"), 250);

  function startOverview() {
    const initial = window.Charts && window.Charts.readJSON("positions-symbols");
    (initial || []).forEach((s) => priceGroups.add("bars." + s));
    window.Live.start({
      groups: [...groups, ...priceGroups],
      resync: resyncOverview,
      on: {
        events: (msg) => prependEvent(msg.payload),
        signals: resyncOverviewSoon,
        orders: resyncOverviewSoon,
        trades: resyncOverviewSoon,
        engine: resyncOverviewSoon,
        "bars.*": (msg) => {
          const p = msg.payload || {};
          const symbol = p.symbol || msg.group.slice(5);
          if (p.close === undefined) return;
          window.Live.coalesce("price:" + symbol, () => updatePrice(symbol, Number(p.close)));
        },
      },
    });
  }

  // --- stock page: latest candle, coalesced per frame ------------------------------------------
  function startStock() {
    const data = window.Charts.readJSON("chart-data");
    const chart = window.Charts.candles(document.getElementById("price-chart"), data);
    const last = document.getElementById("last-price");
    window.Live.start({
      groups,
      resync: refreshRegions,
      on: {
        "bars.*": (msg) => {
          const p = msg.payload || {};
          if (p.timeframe && data && p.timeframe !== data.timeframe) return;
          const t = barTime(p);
          if (t === null || p.close === undefined) return;
          window.Live.coalesce("bar", () => {
            if (chart) chart.update({ time: t, open: +p.open, high: +p.high, low: +p.low, close: +p.close });
            if (last) last.textContent = fmt(p.close);
          });
        },
        trades: refreshRegions,
      },
    });
  }

  // --- strategy page: backtest progress + live lists ---------------------------------------------
  function startStrategy() {
    const curve = window.Charts.readJSON("backtest-equity");
    if (curve && curve.length) window.Charts.equity(document.getElementById("backtest-chart"), curve);
    const running = document.querySelector("[data-backtest-running]");
    if (running) {
      const id = running.dataset.backtestRunning;
      const poll = async () => {
        try {
          const run = await window.Live.getJSON("/api/backtests/" + id + "/");
          if (run.status === "done" || run.status === "failed") { location.reload(); return; }
        } catch (e) { /* keep polling */ }
        setTimeout(poll, 2000);
      };
      setTimeout(poll, 1500);
    }
    window.Live.start({ groups, resync: refreshRegions, on: { "*": refreshRegions } });
  }

  function startGeneric() {
    const curve = window.Charts && window.Charts.readJSON("trade-chart");
    if (curve) window.Charts.candles(document.getElementById("trade-chart-el"), curve);
    const equity = window.Charts && window.Charts.readJSON("equity-data");
    if (equity && equity.length) window.Charts.equity(document.getElementById("equity-chart"), equity);
    const curves = window.Charts && window.Charts.readJSON("compare-data");
    if (curves && curves.length) window.Charts.compare(document.getElementById("compare-chart"), curves);
    window.Live.start({ groups, resync: refreshRegions, on: { "*": refreshRegions } });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.Live) return;
    if (page === "overview") {
      const equity = window.Charts && window.Charts.readJSON("equity-data");
      if (equity && equity.length) window.Charts.equity(document.getElementById("equity-chart"), equity);
      startOverview();
    } else if (page === "stock") startStock();
    else if (page === "strategy") startStrategy();
    else startGeneric();
  });
})();
