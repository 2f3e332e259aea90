// Draws the analytics page's charts (Chart.js, served with the app) from the figures
// the page carries; each chart's table below it has the same figures.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("analytics-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const styles = getComputedStyle(document.documentElement);
  const colours = ["#79aec8", "#a0a0a0", "#d4af37", "#417690", "#ba2121", "#70bf2b"];
  const kinds = {
    tiers: { type: "line", stacked: true, fill: true },
    outstanding: { type: "line", stacked: false, fill: false },
    liability: { type: "line", stacked: false, fill: false },
    // Points issued, redeemed, expired and returned on one axis: bars of one unit drawn
    // to one scale, so that burn far below earn looks it (the liability grows); what
    // members held is in the table under it.
    months: {
      type: "bar", stacked: false, fill: false,
      left: "points", skip: ["held at start", "held at end"],
    },
    // Points on the left axis; members and purchases, far fewer, on the right.
    campaigns: {
      type: "bar", stacked: false, fill: false,
      left: "points", right: ["members reached", "purchases"], rightTitle: "members, purchases",
    },
  };
  Chart.defaults.color = styles.getPropertyValue("--body-fg").trim() || "#333";
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const name = canvas.dataset.chart;
    const chart = data[name];
    const kind = kinds[name] || kinds.outstanding;  // a chart without its own style: lines
    new Chart(canvas, {
      type: kind.type,
      data: {
        labels: chart.x,
        datasets: chart.series.filter((series) => !(kind.skip || []).includes(series.label)).map((series, i) => ({
          label: series.label,
          data: series.values,
          // Stacked bands: each fills down to the one below it, not to the axis (filled
          // to the axis, they all overlap and their colours mix).
          fill: kind.fill ? (i === 0 ? "origin" : "-1") : false,
          borderColor: colours[i % colours.length],
          backgroundColor: colours[i % colours.length] + (kind.fill ? "99" : "cc"),
          pointRadius: 0,
          borderWidth: kind.type === "line" ? 2 : 0,
          yAxisID: (kind.right || []).includes(series.label) ? "right" : "y",
        })),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: kind.stacked, ticks: { maxTicksLimit: 12 } },
          y: { stacked: kind.stacked, beginAtZero: true, title: { display: !!kind.left, text: kind.left } },
          ...(kind.right ? {
            right: {
              position: "right",
              beginAtZero: true,
              grid: { drawOnChartArea: false },
              title: { display: true, text: kind.rightTitle },
            },
          } : {}),
        },
      },
    });
  }
});
