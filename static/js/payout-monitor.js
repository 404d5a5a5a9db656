// The staff payout run monitor: the amounts-by-status chart (vendored Chart.js, from the JSON
// in <script id="payout-run-chart">) and, while the run is live, a poll of the small progress
// JSON every second that updates the percent, the counts and the chart in place. When the
// run's or the cycle's status changes the page reloads, so failures, holds and buttons are
// the server's.
(function () {
  "use strict";
  var ZERO_DECIMAL = ["JPY", "KRW", "CLP", "VND", "ISK", "HUF", "TWD", "UGX"];

  function money(minor, currency) {
    var value = Math.abs(Number(minor) || 0);
    var sign = Number(minor) < 0 ? "-" : "";
    if (ZERO_DECIMAL.indexOf(currency) >= 0) return sign + value.toLocaleString("en-US") + " " + currency;
    var major = Math.floor(value / 100).toLocaleString("en-US");
    var cents = String(value % 100).padStart(2, "0");
    return sign + major + "." + cents + " " + currency;
  }

  function major(minor, currency) {
    return ZERO_DECIMAL.indexOf(currency) >= 0 ? Number(minor) : Number(minor) / 100;
  }

  function start() {
    var chart = null;
    var source = document.getElementById("payout-run-chart");
    var data = source ? JSON.parse(source.textContent) : null;
    var canvas = document.getElementById("chart-run");
    if (data && canvas && typeof window.Chart !== "undefined") {
      chart = new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{
            label: "Amount",
            data: data.amounts_minor.map(function (v) { return major(v, data.currency); }),
            backgroundColor: ["#868e96", "#3b5bdb", "#1c7ed6", "#2f9e44", "#f59f00", "#e03131", "#ae3ec9"]
          }]
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (ctx) { return money(data.amounts_minor[ctx.dataIndex], data.currency); } } }
          }
        }
      });
      canvas.dataset.points = String(data.labels.length);
    }
    document.documentElement.dataset.chartsReady = "true";

    var panel = document.getElementById("payout-run");
    if (!panel || panel.dataset.live !== "true") return;
    var status = panel.dataset.status;
    var cycleStatus = panel.dataset.cycleStatus;
    var url = panel.dataset.progressUrl;
    var busy = false;

    function apply(p) {
      if (p.status !== status || p.cycle_status !== cycleStatus) {
        window.location.reload();
        return;
      }
      var pct = String(p.percent_settled);
      panel.querySelector("[data-testid=run-percent]").textContent = pct + "%";
      panel.querySelector("[data-testid=run-done]").textContent = String(p.done_count);
      var bar = panel.querySelector("[role=progressbar]");
      bar.setAttribute("aria-valuenow", pct);
      bar.querySelector(".progress-fill").style.width = pct + "%";
      Object.keys(p.counts).forEach(function (key) {
        var count = panel.querySelector("[data-testid=count-" + key + "]");
        var amount = panel.querySelector("[data-testid=amount-" + key + "]");
        if (count) count.textContent = String(p.counts[key].count);
        if (amount) amount.textContent = money(p.counts[key].amount_minor, p.currency);
      });
      if (chart && data) {
        data.amounts_minor = data.statuses.map(function (key) { return p.counts[key] ? p.counts[key].amount_minor : 0; });
        chart.data.datasets[0].data = data.amounts_minor.map(function (v) { return major(v, data.currency); });
        chart.update();
      }
    }

    function poll() {
      if (busy) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) { if (p && p.run) apply(p); })
        .catch(function () {})
        .then(function () { busy = false; });
    }
    window.setInterval(poll, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
