// Draws the overview's two charts from the series the page carries as JSON (uPlot, vendored).
"use strict";

(function () {
  const source = document.getElementById("series");
  if (!source || typeof uPlot === "undefined") {
    return;
  }
  const points = JSON.parse(source.textContent);
  const times = points.map((point) => Date.parse(point.at) / 1000);
  const width = (element) => Math.max(element.clientWidth, 300);

  function chart(id, series, data) {
    const element = document.getElementById(id);
    // Points as well as lines: a minute with deliveries between quiet minutes is one point.
    const drawn = series.map((line) => ({ ...line, points: { show: true, size: 4 }, spanGaps: true }));
    const options = { width: width(element), height: 240, series: [{}, ...drawn], scales: { x: { time: true } } };
    const plot = new uPlot(options, [times, ...data], element);
    window.addEventListener("resize", () => plot.setSize({ width: width(element), height: 240 }));
  }

  chart(
    "throughput-chart",
    [
      { label: source.dataset.received, stroke: "#1f3a5f", width: 2 },
      { label: source.dataset.delivered, stroke: "#1b7f3b", width: 2 },
    ],
    [points.map((point) => point.received), points.map((point) => point.delivered)],
  );
  chart(
    "latency-chart",
    [
      { label: "p50", stroke: "#1b7f3b", width: 2 },
      { label: "p95", stroke: "#b26a00", width: 2 },
      { label: "p99", stroke: "#b3261e", width: 2 },
    ],
    [
      points.map((point) => point.p50_ms),
      points.map((point) => point.p95_ms),
      points.map((point) => point.p99_ms),
    ],
  );
})();
