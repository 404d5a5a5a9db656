// The disclosure pages' charts, drawn with the vendored Chart.js from the JSON the server puts
// in <script id="disclosure-charts" type="application/json">.
(function () {
  "use strict";
  var COLOURS = ["#3b5bdb", "#2f9e44", "#f59f00", "#e03131", "#7048e8", "#1098ad", "#d6336c", "#5c940d"];
  function bar(canvas, labels, datasets, options) {
    if (!canvas) return;
    canvas.dataset.points = String(labels.length);
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, options || {})
    });
  }
  function stacked(series) {
    return series.datasets.map(function (d, i) {
      return { label: d.label, data: d.data, backgroundColor: COLOURS[i % COLOURS.length] };
    });
  }
  function draw() {
    var source = document.getElementById("disclosure-charts");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (!data) return;
    if (data.licensees) {
      bar(document.getElementById("chart-licensees"), data.licensees.labels,
        [{ label: "Declared", data: data.licensees.quantities, backgroundColor: "#7048e8" }],
        { indexAxis: "y", plugins: { legend: { display: false } } });
    }
    if (data.products) {
      bar(document.getElementById("chart-products"), data.products.labels,
        [{ label: "Earned", data: data.products.amounts, backgroundColor: "#3b5bdb" }],
        { indexAxis: "y", plugins: { legend: { display: false } } });
    }
    if (data.periods) {
      bar(document.getElementById("chart-periods") || document.getElementById("chart-work-periods"),
        data.periods.labels, stacked(data.periods),
        { scales: { x: { stacked: true }, y: { stacked: true } } });
    }
    if (data.earnings) {
      bar(document.getElementById("chart-work-earnings"), data.earnings.labels,
        [{ label: "Earned", data: data.earnings.amounts, backgroundColor: "#2f9e44" }],
        { plugins: { legend: { display: false } } });
    }
    document.documentElement.dataset.chartsReady = "true";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
