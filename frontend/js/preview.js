/* Previews of a finished job's output: the first rows of its data file as a table, and its images
   as thumbnails with the COCO annotations (boxes, masks) drawn over them on a canvas. */
(function (SDG) {
  'use strict';
  const { el } = SDG.dom;

  const PREVIEW_ROWS = 20;
  const MAX_THUMBNAILS = 24;
  const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45'];

  /** RFC 4180 CSV: quoted fields may hold commas, quotes ("") and newlines. */
  function parseCsv(text, maxRows) {
    const rows = [];
    let row = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < text.length && rows.length <= maxRows; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') { row.push(field); field = ''; }
      else if (c === '\n' || c === '\r') {
        if (c === '\r' && text[i + 1] === '\n') i += 1;
        row.push(field); rows.push(row); row = []; field = '';
      } else field += c;
    }
    if (field !== '' || row.length) { row.push(field); rows.push(row); }
    const [header = [], ...body] = rows;
    return body.slice(0, maxRows).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])));
  }

  /** The first rows of data.json (an array, or an object holding one), data.jsonl or data.csv. */
  function parseRows(path, text) {
    if (path.endsWith('.jsonl')) {
      return text.split('\n').filter((l) => l.trim()).slice(0, PREVIEW_ROWS).map((l) => JSON.parse(l));
    }
    if (path.endsWith('.csv')) return parseCsv(text, PREVIEW_ROWS);
    const data = JSON.parse(text);
    const rows = Array.isArray(data) ? data : (data.rows || data.data || []);
    return rows.slice(0, PREVIEW_ROWS);
  }

  function cellText(value) {
    if (value === null || value === undefined) return '';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }

  function rowsTable(rows, jobId) {
    const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    return el('div', { class: 'table-wrap' },
      el('table', { class: 'preview-table', dataset: { testid: 'preview-table' } },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, '#'), columns.map((c) => el('th', { scope: 'col' }, c)))),
        el('tbody', {}, rows.map((row, i) => el('tr', { dataset: { testid: 'preview-row' } },
          el('td', { class: 'muted' }, String(i + 1)),
          columns.map((c) => {
            const value = row[c];
            // Unified rows name their image; link it rather than print a path.
            if (c === 'image_file' && value) {
              return el('td', {}, el('a', { href: SDG.api.fileUrl(jobId, String(value)), target: '_blank', rel: 'noopener' }, cellText(value)));
            }
            const isNull = value === null;
            return el('td', { class: isNull ? 'null' : undefined, title: cellText(value) }, isNull ? 'null' : cellText(value));
          }))))));
  }

  /** COCO → {basename: {width, height, objects: [{label, bbox, segmentation}]}}. */
  function indexCoco(coco) {
    const categories = new Map((coco.categories || []).map((c) => [c.id, c.name]));
    const byId = new Map();
    const byName = {};
    for (const image of coco.images || []) {
      const entry = { width: image.width, height: image.height, caption: image.caption, objects: [] };
      byId.set(image.id, entry);
      byName[image.file_name.split('/').pop()] = entry;
    }
    for (const ann of coco.annotations || []) {
      const entry = byId.get(ann.image_id);
      if (entry) entry.objects.push({ label: categories.get(ann.category_id) || ann.label || '?', bbox: ann.bbox, segmentation: ann.segmentation });
    }
    for (const caption of coco.captions || []) {
      const entry = byId.get(caption.image_id);
      if (entry && !entry.caption) entry.caption = caption.caption;
    }
    return byName;
  }

  /** Uncompressed COCO RLE (column-major runs, zeros first) painted into an offscreen canvas. */
  function rleCanvas(rle, color) {
    const [height, width] = rle.size;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(width, height);
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    let pos = 0;
    rle.counts.forEach((run, i) => {
      if (i % 2 === 1) {
        for (let k = pos; k < pos + run; k += 1) {
          const p = ((k % height) * width + Math.floor(k / height)) * 4;
          image.data.set([r, g, b, 110], p);
        }
      }
      pos += run;
    });
    ctx.putImageData(image, 0, 0);
    return canvas;
  }

  /** Draws masks and boxes. The canvas has `scale` canvas pixels per image pixel, so that labels
      stay legible over small images; CSS then fits canvas and image to the same frame. */
  function drawObjects(canvas, entry, scale) {
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    // Sized for a thumbnail about 180 px wide on screen: ~11 px text, 2 px lines.
    const unit = canvas.width / 180;
    const fontPx = Math.round(11 * unit);
    ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
    ctx.lineWidth = Math.max(1, 2 * unit);
    entry.objects.forEach((obj, i) => {
      const color = COLORS[i % COLORS.length];
      if (obj.segmentation && Array.isArray(obj.segmentation.counts)) {
        ctx.drawImage(rleCanvas(obj.segmentation, color), 0, 0, canvas.width, canvas.height);
      }
      if (!obj.bbox) return;
      const [x, y, w, h] = obj.bbox.map((v) => v * scale);
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);
      const pad = Math.round(3 * unit);
      const labelHeight = fontPx + pad;
      const top = y >= labelHeight ? y - labelHeight : y; // inside the box when it touches the top
      ctx.fillStyle = color;
      ctx.fillRect(x, top, ctx.measureText(obj.label).width + 2 * pad, labelHeight);
      ctx.fillStyle = '#fff';
      ctx.fillText(obj.label, x + pad, top + fontPx);
    });
  }

  function thumbnail(jobId, path, entry, meta) {
    const href = SDG.api.fileUrl(jobId, path);
    const name = path.split('/').pop();
    const img = el('img', { src: href, alt: meta && meta.prompt ? meta.prompt : name, loading: 'lazy' });
    const frame = el('a', { class: 'thumb-frame', href, target: '_blank', rel: 'noopener' }, img);
    img.addEventListener('load', () => {
      frame.style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`;
      // Small images (64 px demo output) blow up into blur; keep their pixels sharp instead.
      img.classList.toggle('upscaled', img.naturalWidth < frame.clientWidth);
    });
    if (entry) {
      // Image pixels times `scale`; CSS stretches canvas and image over the same frame, so they line up.
      const scale = Math.max(1, Math.ceil(360 / entry.width));
      const canvas = el('canvas', {
        class: 'overlay', width: entry.width * scale, height: entry.height * scale,
        'aria-hidden': 'true', dataset: { testid: 'annotation-overlay', objects: entry.objects.length },
      });
      drawObjects(canvas, entry, scale);
      frame.append(canvas);
    }
    const caption = (entry && entry.caption) || (meta && meta.caption);
    const cut = (meta && meta.prompt_tokens_dropped) || 0;
    return el('figure', { class: 'thumb', dataset: { testid: 'thumbnail' } },
      frame,
      el('figcaption', {},
        el('span', { class: 'thumb-name' }, name),
        meta && meta.prompt && el('span', { class: 'thumb-prompt', title: meta.prompt }, meta.prompt),
        cut > 0 && el('span', {
          class: 'thumb-cut', dataset: { testid: 'thumb-prompt-cut' },
          title: 'The text encoder (CLIP) reads 77 tokens: the words past them did not shape this image',
        }, `prompt cut: its last ${cut} token${cut === 1 ? '' : 's'} unread`),
        caption && el('span', { class: 'thumb-caption' }, `“${caption}”`),
        entry && entry.objects.length > 0 && el('span', { class: 'thumb-objects' }, entry.objects.map((o) => o.label).join(', '))));
  }

  SDG.preview = { parseRows, parseCsv, rowsTable, indexCoco, thumbnail, PREVIEW_ROWS, MAX_THUMBNAILS };
})(window.SDG = window.SDG || {});
