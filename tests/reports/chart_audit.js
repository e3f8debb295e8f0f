// Checks every Plotly chart of the report as the reader sees it, at the window's width.
// Evaluated by tests/reports/test_report_browser.py; returns, per chart id, the problems
// found (an empty list when the chart reads right), how many data categories it has and
// how many data marks are drawn.
//  - the card lies inside the window, the chart (svg) and its plot area inside the card;
//  - every tick label, axis title, legend entry, annotation and bar text lies inside the
//    card (nothing cut), and no Plotly toolbar covers the title;
//  - every category of a category axis has a visible tick label;
//  - every numeric value lies inside its axis' range (a histogram that "stops at 45 %");
//  - every nonzero bar is drawn with a nonzero size inside the plot area, every marker
//    inside the plot area, every treemap segment and sankey stage with flows is drawn.
() => {
  const vw = document.documentElement.clientWidth;
  const tol = 1.5;
  const fmt = (r) => `[${Math.round(r.left)}, ${Math.round(r.right)}] x [${Math.round(r.top)}, ${Math.round(r.bottom)}]`;
  const inside = (r, box) =>
    r.left >= box.left - tol && r.right <= box.right + tol &&
    r.top >= box.top - tol && r.bottom <= box.bottom + tol;
  const shown = (r) => r.width > 0.5 && r.height > 0.5;
  const norm = (t) => String(t).replace(/<br>/g, "").replace(/\s+/g, "");
  const axisOf = (layout, id) => layout[id.replace(/^([xy])/, "$1axis")];
  const charts = {};
  for (const el of document.querySelectorAll(".js-plotly-plot")) {
    const problems = [];
    const card = el.closest("figure.figure, .figure") || el.parentElement;
    const box = card.getBoundingClientRect();
    if (box.left < -tol || box.right > vw + tol) {
      problems.push(`card ${fmt(box)} is outside the window (0 … ${vw})`);
    }
    const svg = el.querySelector(".main-svg").getBoundingClientRect();
    if (!inside(svg, box)) problems.push(`chart ${fmt(svg)} is wider than its card ${fmt(box)}`);
    const areas = [...el.querySelectorAll(".nsewdrag")].map((d) => d.getBoundingClientRect());
    for (const a of areas) {
      if (!inside(a, box)) problems.push(`plot area ${fmt(a)} is outside its card ${fmt(box)}`);
    }
    const plotArea = areas[0] || svg;
    const texts = el.querySelectorAll(
      ".xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .legendtext, " +
      ".annotation-text, .bartext, .node-label, .gtitle, .cbaxis text"
    );
    for (const t of texts) {
      const r = t.getBoundingClientRect();
      if (!t.textContent.trim() || !shown(r)) continue;
      if (!inside(r, box)) problems.push(`text '${t.textContent}' ${fmt(r)} is cut by its card ${fmt(box)}`);
    }
    const caption = card.querySelector("h3.chart-title");
    const bar = el.querySelector(".modebar");
    if (bar && caption && shown(bar.getBoundingClientRect())) {
      const m = bar.getBoundingClientRect(), c = caption.getBoundingClientRect();
      if (m.left < c.right && m.right > c.left && m.top < c.bottom && m.bottom > c.top) {
        problems.push("the Plotly toolbar covers the title");
      }
    }
    const labels = (axis) => new Set(
      [...el.querySelectorAll(`.${axis}tick text`)]
        .filter((t) => shown(t.getBoundingClientRect()) && inside(t.getBoundingClientRect(), box))
        .map((t) => norm(t.textContent))
    );
    const layout = el._fullLayout;
    let categories = 0, marks = 0;
    for (const tr of el._fullData) {
      if (tr.visible !== true) continue;
      if (tr.xaxis && tr.yaxis) {
        for (const [name, id, values] of [["x", tr.xaxis, tr.x], ["y", tr.yaxis, tr.y]]) {
          const ax = axisOf(layout, id);
          if (!values) continue;
          if (ax.type === "category") {
            const seen = labels(name);
            for (const v of values) {
              categories += 1;
              if (!seen.has(norm(v))) problems.push(`${tr.type} '${tr.name || ""}': ${name} category '${v}' has no visible label`);
            }
          } else if ((ax.type === "linear" || ax.type === "log") && !["heatmap", "funnel"].includes(tr.type)) {
            const nums = Array.from(values, Number).filter(Number.isFinite);
            const [lo, hi] = ax.range.map((v) => (ax.type === "log" ? 10 ** v : v)).sort((a, b) => a - b);
            const span = (hi - lo) * 1e-6;
            const out = nums.filter((v) => v < lo - span || v > hi + span);
            if (out.length) problems.push(`${tr.type} '${tr.name || ""}': ${out.length} ${name} value(s) outside the axis range [${lo}, ${hi}], e.g. ${out[0]}`);
          }
        }
      }
    }
    // every bar (bar, histogram, funnel) with a nonzero value is drawn, inside the plot area
    for (const g of el.querySelectorAll("g.trace.bars")) {
      const points = [...g.querySelectorAll(".point")];
      const trace = g.__data__ && g.__data__[0] && g.__data__[0].trace;
      for (const p of points) {
        const d = p.__data__ || {};
        if (!Number.isFinite(d.s) || d.s === 0) continue;
        const r = (p.querySelector("path") || p).getBoundingClientRect();
        marks += 1;
        if (!shown(r) || !inside(r, plotArea)) problems.push(`${trace ? trace.type : "bar"} '${trace ? trace.name || "" : ""}': bar of ${d.s} at ${fmt(r)} is not visible inside the plot area ${fmt(plotArea)}`);
      }
      if (trace && trace.type === "bar") {
        const values = trace.orientation === "h" ? trace.x : trace.y;
        const nonzero = Array.from(values || [], Number).filter((v) => Number.isFinite(v) && v !== 0).length;
        const drawn = points.filter((p) => { const d = p.__data__ || {}; return Number.isFinite(d.s) && d.s !== 0; }).length;
        if (drawn !== nonzero) problems.push(`bar '${trace.name || ""}': ${drawn} bars drawn for ${nonzero} nonzero values`);
      }
    }
    // every marker of a scatter with markers, inside the plot area
    for (const g of el.querySelectorAll(".scatterlayer g.trace")) {
      for (const p of g.querySelectorAll("path.point")) {
        const r = p.getBoundingClientRect();
        if (!shown(r)) continue;
        marks += 1;
        const cx = (r.left + r.right) / 2, cy = (r.top + r.bottom) / 2;
        if (cx < plotArea.left - tol || cx > plotArea.right + tol || cy < plotArea.top - tol || cy > plotArea.bottom + tol) {
          problems.push(`marker at ${fmt(r)} is outside the plot area ${fmt(plotArea)}`);
        }
      }
    }
    // lines (curves, bands) are drawn
    for (const line of el.querySelectorAll(".scatterlayer .js-line, .scatterlayer .js-fill")) {
      if (shown(line.getBoundingClientRect())) marks += 1;
    }
    for (const img of el.querySelectorAll(".heatmaplayer image")) {
      const r = img.getBoundingClientRect();
      marks += 1;
      if (!shown(r) || !inside(r, plotArea)) problems.push(`heatmap ${fmt(r)} is not inside its plot area ${fmt(plotArea)}`);
    }
    for (const tr of el._fullData) {
      if (tr.type === "treemap") {
        const slices = [...el.querySelectorAll(".treemaplayer .slice")].filter((s) => shown(s.getBoundingClientRect()));
        for (const s of slices) if (!inside(s.getBoundingClientRect(), box)) problems.push(`treemap slice outside its card`);
        marks += slices.length;
        categories += tr.labels.length;
        if (slices.length < tr.labels.length) problems.push(`treemap: ${slices.length} visible tiles for ${tr.labels.length} segments`);
      }
      if (tr.type === "sankey") {
        const used = new Set([...tr.link.source, ...tr.link.target]);
        const nodes = [...el.querySelectorAll(".sankey-node")].filter((n) => shown(n.getBoundingClientRect()));
        for (const n of nodes) if (!inside(n.getBoundingClientRect(), box)) problems.push(`sankey node outside its card`);
        marks += nodes.length;
        categories += used.size;
        if (nodes.length < used.size) problems.push(`sankey: ${nodes.length} visible nodes for ${used.size} stages with flows`);
      }
    }
    if (marks === 0) problems.push("no data mark is drawn");
    charts[el.id] = { problems, categories, marks, width: Math.round(box.width) };
  }
  return { window: vw, page: document.documentElement.scrollWidth, charts };
}
