// The statement page's two charts, drawn with the vendored Chart.js from the JSON the server
// puts in <script id="statement-charts" type="application/json">.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("statement-charts");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var money = function (value) {
      return Number(value).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + " " + data.currency;
    };
    var tooltip = { callbacks: { label: function (ctx) { return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + money(ctx.parsed.y !== undefined ? ctx.parsed.y : ctx.parsed); } } };
    var cycles = document.getElementById("chart-cycles");
    if (cycles) {
      cycles.dataset.points = String(data.cycles.labels.length);
      new window.Chart(cycles, {
        type: "bar",
        data: {
          labels: data.cycles.labels,
          datasets: [
            { label: "Earned", data: data.cycles.earned, backgroundColor: "#3b5bdb" },
            { label: "Payable", data: data.cycles.payable, backgroundColor: "#2f9e44" },
            { label: "Carried forward", data: data.cycles.carried, backgroundColor: "#f59f00" }
          ]
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { tooltip: tooltip } }
      });
    }
    var works = document.getElementById("chart-works");
    if (works) {
      works.dataset.points = String(data.works.labels.length);
      new window.Chart(works, {
        type: "bar",
        data: { labels: data.works.labels, datasets: [{ label: "Earned", data: data.works.amounts, backgroundColor: "#3b5bdb" }] },
        options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false }, tooltip: tooltip } }
      });
    }
    document.documentElement.dataset.chartsReady = "true";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
