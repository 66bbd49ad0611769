/* Chart helpers on top of the vendored TradingView Lightweight Charts (static/vendor/).
 * Data comes from the server in <script type="application/json"> blocks (json_script). */
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const PALETTE = ["#2563eb", "#f59e0b", "#8b5cf6", "#10b981", "#ec4899", "#0ea5e9", "#84cc16", "#ef4444"];

  function dark() { return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches; }

  function baseOptions(el) {
    const text = dark() ? "#d1d5db" : "#374151";
    const grid = dark() ? "#1f2430" : "#f0f1f3";
    return {
      width: el.clientWidth,
      height: el.clientHeight,
      layout: { background: { type: "solid", color: "transparent" }, textColor: text, fontSize: 11 },
      grid: { vertLines: { color: grid }, horzLines: { color: grid } },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, timeVisible: true, secondsVisible: false },
      crosshair: { mode: LWC.CrosshairMode.Normal },
    };
  }

  function autoResize(chart, el) {
    if (!window.ResizeObserver) return;
    new ResizeObserver(() => chart.applyOptions({ width: el.clientWidth, height: el.clientHeight })).observe(el);
  }

  function readJSON(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  /* Candles + overlay indicators + trade markers. Returns an object with update(bar). */
  function candles(el, data) {
    if (!LWC || !el || !data) return null;
    const chart = LWC.createChart(el, baseOptions(el));
    autoResize(chart, el);
    const candle = chart.addCandlestickSeries({
      upColor: "#16a34a", downColor: "#dc2626", borderVisible: false,
      wickUpColor: "#16a34a", wickDownColor: "#dc2626",
    });
    candle.setData(data.bars.map((b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close })));
    const legend = [];
    let paneIndex = 0;
    (data.series || []).forEach((s, i) => {
      const color = PALETTE[i % PALETTE.length];
      const options = { color, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false };
      if (!s.overlay) {
        // Oscillators get their own scale at the bottom quarter of the chart.
        options.priceScaleId = "osc" + paneIndex;
        paneIndex += 1;
      }
      const line = chart.addLineSeries(options);
      if (!s.overlay) line.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
      line.setData(s.points.map((p) => ({ time: p.time, value: p.value })));
      legend.push({ color, name: s.name });
    });
    if (data.markers && data.markers.length) candle.setMarkers(data.markers);
    chart.timeScale().fitContent();
    const legendEl = el.parentElement && el.parentElement.querySelector(".legend");
    if (legendEl) {
      legendEl.innerHTML = "";
      legend.forEach((l) => {
        const span = document.createElement("span");
        span.innerHTML = '<i style="background:' + l.color + '"></i>';
        span.appendChild(document.createTextNode(l.name));
        legendEl.appendChild(span);
      });
    }
    return {
      chart,
      update(bar) { candle.update(bar); },
    };
  }

  /* Equity line with its drawdown (in %) as an area below. points: [{time, equity, drawdown}] */
  function equity(el, points, extra) {
    if (!LWC || !el || !points) return null;
    const chart = LWC.createChart(el, baseOptions(el));
    autoResize(chart, el);
    const line = chart.addLineSeries({ color: "#2563eb", lineWidth: 2, priceLineVisible: false });
    line.setData(points.map((p) => ({ time: p.time, value: p.equity })));
    line.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.35 } });
    const dd = chart.addAreaSeries({
      priceScaleId: "dd", lineColor: "#dc2626", topColor: "rgba(220,38,38,.05)",
      bottomColor: "rgba(220,38,38,.35)", lineWidth: 1, priceLineVisible: false,
      priceFormat: { type: "custom", formatter: (v) => v.toFixed(1) + "%" },
    });
    dd.priceScale().applyOptions({ scaleMargins: { top: 0.7, bottom: 0 } });
    dd.setData(points.map((p) => ({ time: p.time, value: p.drawdown })));
    (extra || []).forEach((curve, i) => {
      const s = chart.addLineSeries({ color: PALETTE[(i + 1) % PALETTE.length], lineWidth: 2, priceLineVisible: false });
      s.setData(curve.map((p) => ({ time: p.time, value: p.equity })));
    });
    chart.timeScale().fitContent();
    return { chart, line, dd };
  }

  /* Several equity curves on one chart, rebased to 100 so they compare. */
  function compare(el, curves) {
    if (!LWC || !el) return null;
    const chart = LWC.createChart(el, baseOptions(el));
    autoResize(chart, el);
    curves.forEach((c, i) => {
      if (!c.points.length) return;
      const base = c.points[0].equity || 1;
      const s = chart.addLineSeries({ color: PALETTE[i % PALETTE.length], lineWidth: 2, priceLineVisible: false, title: c.label });
      s.setData(c.points.map((p) => ({ time: p.time, value: (p.equity / base) * 100 })));
    });
    chart.timeScale().fitContent();
    return chart;
  }

  window.Charts = { candles, equity, compare, readJSON, PALETTE };
})();
