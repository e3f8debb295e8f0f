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
  // on a narrow screen the tabs scroll sideways: bring the current one into view
  function showCurrentTab() {
    var nav = document.querySelector("nav.tabs");
    var tab = nav && nav.querySelector("[aria-current=page]");
    if (tab && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = tab.offsetLeft - (nav.clientWidth - tab.offsetWidth) / 2;
    }
  }
  document.addEventListener("DOMContentLoaded", function () { watch(document); showCurrentTab(); });
  document.addEventListener("htmx:afterSettle", function (e) { watch(e.target); });
})();
