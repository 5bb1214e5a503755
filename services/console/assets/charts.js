// Charts: each <canvas data-chart="<id>"> is drawn from the JSON block <script type="application/json" id="<id>">
// ({ type, labels, datasets: [{ label, data }] , yTitle }). Pages own the data; this file owns the drawing.
(function () {
  const PALETTE = ['#1f5f99', '#b3541e', '#2e7d32', '#6a3d9a', '#8a6d00', '#00796b'];
  function draw(root) {
    if (typeof Chart === 'undefined') return;
    root.querySelectorAll('canvas[data-chart]').forEach((canvas) => {
      const src = document.getElementById(canvas.dataset.chart);
      if (!src) return;
      const spec = JSON.parse(src.textContent);
      const old = Chart.getChart(canvas);
      if (old) old.destroy();
      new Chart(canvas, {
        type: spec.type || 'line',
        data: {
          labels: spec.labels,
          datasets: spec.datasets.map((d, i) => ({
            label: d.label,
            data: d.data,
            borderColor: PALETTE[i % PALETTE.length],
            backgroundColor: PALETTE[i % PALETTE.length],
            tension: 0.2,
          })),
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          scales: { y: { beginAtZero: true, title: { display: !!spec.yTitle, text: spec.yTitle || '' } } },
        },
      });
    });
  }
  document.addEventListener('DOMContentLoaded', () => draw(document));
  document.addEventListener('htmx:afterSwap', (e) => draw(e.detail.target));
})();
