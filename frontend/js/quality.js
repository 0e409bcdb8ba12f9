/* A job's quality.json (sdg/quality.py) as a table per data file and small inline SVG plots:
   requested against observed for each sampled field, and the lengths of model-written strings. */
(function (SDG) {
  'use strict';
  const { el } = SDG.dom;
  const NS = 'http://www.w3.org/2000/svg';
  const W = 300;
  const H = 110;
  const BASE = H - 18; // the bars' baseline, above the axis labels

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function text(x, y, value, anchor = 'middle') {
    const node = svg('text', { x, y, 'text-anchor': anchor, class: 'plot-label' });
    node.textContent = value;
    return node;
  }

  const percent = (share) => `${(100 * share).toFixed(share > 0 && share < 0.01 ? 2 : 1)}%`;
  const pValue = (p) => (p === undefined || p === null ? '' : p < 0.0001 ? p.toExponential(1) : p.toFixed(4));

  /** Bars of `observed`, with `expected` (when given) drawn over them: a tick on each bar for
      categories, else a line; labels under each bar when few, else under the ends. */
  function barPlot(observed, expected, labels, title, ticks = false) {
    const top = Math.max(1, ...observed, ...(expected || []));
    const step = W / Math.max(1, observed.length);
    const y = (v) => BASE - (BASE - 4) * (v / top);
    const bars = observed.map((v, i) => svg('rect', {
      x: i * step + 1, y: y(v), width: Math.max(1, step - 2), height: BASE - y(v), class: 'plot-bar',
    }, svg('title', {}, `${labels ? labels[i] : i}: ${v}${expected ? ` (requested ${expected[i].toFixed(1)})` : ''}`)));
    const line = expected && (ticks
      ? expected.map((v, i) => svg('line', { x1: i * step + 1, x2: (i + 1) * step - 1, y1: y(v), y2: y(v), class: 'plot-expected' }))
      : svg('polyline', { points: expected.map((v, i) => `${i * step + step / 2},${y(v)}`).join(' '), class: 'plot-expected', fill: 'none' }));
    const few = labels && labels.length <= 8;
    const marks = few
      ? labels.map((l, i) => text(i * step + step / 2, H - 4, String(l).slice(0, 10)))
      : labels && [text(0, H - 4, labels[0], 'start'), text(W, H - 4, labels[labels.length - 1], 'end')];
    return svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title, class: 'plot', 'data-testid': 'quality-plot' },
      svg('line', { x1: 0, x2: W, y1: BASE, y2: BASE, class: 'plot-axis' }), bars, line, marks);
  }

  function fitPlot(name, fit) {
    const plot = fit.plot;
    if (!plot) return null;
    if (plot.kind === 'categories') return barPlot(plot.observed, plot.expected, plot.labels, name, true);
    const ends = plot.range_labels;
    const labels = plot.observed.map((_, i) => (i === 0 ? ends[0] : i === plot.observed.length - 1 ? ends[1] : ''));
    return barPlot(plot.observed, plot.expected, labels, name);
  }

  function figure(name, caption, plot) {
    return el('figure', { class: 'quality-plot' }, plot, el('figcaption', {}, el('strong', {}, name), ' ', caption));
  }

  function fitCaption(fit) {
    if (!fit.test) return `no test: ${fit.why || 'none applies'}`;
    return el('span', {}, `${fit.test}, n ${fit.n}: `,
      el('span', { class: fit.p_value < 0.01 ? 'p-low' : 'p-ok', dataset: { testid: 'quality-p-value' } }, `p = ${pValue(fit.p_value)}`),
      fit.p_value < 0.01 ? ' (not what was requested)' : '');
  }

  function coverage(field) {
    const c = field.coverage;
    if (!c) return '';
    return `${c.seen}/${c.allowed}` + (c.missing.length ? ` (missing ${c.missing.slice(0, 5).join(', ')}${c.missing.length > 5 ? '…' : ''})` : '');
  }

  function fieldsTable(fields) {
    return el('table', { class: 'quality-table', dataset: { testid: 'quality-fields' } },
      el('thead', {}, el('tr', {}, ['field', 'made by', 'null rate', 'distinct', 'coverage', 'test', 'p'].map((h) => el('th', {}, h)))),
      el('tbody', {}, Object.entries(fields).map(([name, f]) => el('tr', {},
        el('td', {}, name),
        el('td', {}, f.sampler ? `${f.source} (${f.sampler})` : f.source),
        el('td', {}, percent(f.null_rate)),
        el('td', {}, percent(f.distinct_share)),
        el('td', {}, coverage(f)),
        el('td', {}, f.fit ? f.fit.test || '' : ''),
        el('td', {}, f.fit ? pValue(f.fit.p_value) : '')))));
  }

  function plots(fields) {
    const out = [];
    for (const [name, f] of Object.entries(fields)) {
      if (f.fit && f.fit.plot) out.push(figure(name, fitCaption(f.fit), fitPlot(name, f.fit)));
      if (f.lengths && f.lengths.histogram) {
        const l = f.lengths;
        const edges = l.histogram.edges;
        const labels = l.histogram.counts.map((_, i) => (i === 0 ? Math.ceil(edges[0]) : i === l.histogram.counts.length - 1 ? Math.floor(edges[edges.length - 1]) : ''));
        out.push(figure(name, `length min ${l.min}, median ${l.p50}, p90 ${l.p90}, max ${l.max}; repeated in ${percent(f.repeated_share)} of rows`,
          barPlot(l.histogram.counts, null, labels, `${name} lengths`)));
      }
    }
    return el('div', { class: 'quality-plots' }, out);
  }

  function tableReport(report) {
    return [
      el('p', { class: 'muted small' }, `${report.rows} rows, ${percent(report.distinct_row_ratio)} distinct`),
      fieldsTable(report.fields),
      el('p', { class: 'muted small' }, 'Bars: the rows; lines: what the sampler asks for.'),
      plots(report.fields)];
  }

  /** Replaces `placeholder` with the report: one part per table of a tables job. */
  function render(placeholder, report) {
    if (!report || report.error) {
      placeholder.textContent = `No quality report: ${report ? report.error : 'none'}`;
      return;
    }
    const parts = report.tables
      ? Object.entries(report.tables).map(([name, r]) => el('div', { class: 'quality-part', dataset: { testid: 'quality-table' } },
        el('h4', {}, name), tableReport(r)))
      : tableReport(report);
    SDG.dom.replace(placeholder, el('div', {}, parts));
  }

  SDG.quality = { render };
})(window.SDG = window.SDG || {});
