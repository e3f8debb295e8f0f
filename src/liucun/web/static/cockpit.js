// liucun cockpit: redraw each chart at its card's width whenever the card changes size
// (window resize, rotation, a font that loads late; Plotly's own "responsive" only
// listens to the window), including charts that arrive in htmx swaps.
(function () {
  "use strict";
  var observer = window.ResizeObserver
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (e) {
          var plot = e.target.querySelector(".js-plotly-plot");
          if (plot && plot._fullLayout && window.Plotly) window.Plotly.Plots.resize(plot);
        });
      })
    : null;
  function watch(root) {
    if (!observer) return;
    (root || document).querySelectorAll("figure.figure").forEach(function (f) {
      observer.observe(f);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { watch(document); });
  document.addEventListener("htmx:afterSettle", function (e) { watch(e.target); });
})();
