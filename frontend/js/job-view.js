/* The selected job: its full status (re-rendered on every poll) and, once it has files, its results
   (files, a rows preview, the quality report, thumbnails with annotations, the model that made them), loaded once. */
(function (SDG) {
  'use strict';
  const { el, append, replace, byId, clear, formatTime, formatDuration } = SDG.dom;

  const FINISHED = new Set(['completed', 'failed', 'cancelled']);
  const DEMO_NOTE = 'demo model, random weights';
  // Which run's results are on screen, so that polling does not reload them. A resumed job keeps
  // its id, and its resume can end before any poll sees it queued, so the key names the run.
  let resultsFor = null;
  // While a job runs: its id and images done, for the latest images on screen.
  let latestFor = null;
  const LATEST_IMAGES = 8;

  function runKey(status) {
    return `${status.job_id} ${status.finished_at} ${(status.resumes || []).length}`;
  }

  function progressBar(status, testid) {
    const value = Math.max(0, Math.min(100, Number(status.progress) || 0));
    return el('div', {
      class: `progress progress-${status.status}`, role: 'progressbar', 'aria-label': `Progress of ${status.job_id}`,
      'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(value), dataset: { testid },
    }, el('div', { class: 'progress-bar', style: `width: ${value}%` }));
  }

  function statsLine(stats) {
    if (!stats) return '';
    const parts = [];
    if (stats.rows_total) parts.push(`rows ${stats.rows_done ?? 0}/${stats.rows_total}`);
    if (stats.images_total) parts.push(`images ${stats.images_done ?? 0}/${stats.images_total}`);
    if (stats.total_steps) parts.push(`step ${stats.step ?? 0}/${stats.total_steps}`);
    return parts.join(' · ');
  }

  /** The status line worth showing: a failed job's message often just repeats its error. */
  function messageOf(status) {
    const message = status.message || '';
    return status.error && message.includes(status.error) ? '' : message;
  }

  function definition(term, value, testid) {
    if (value === undefined || value === null || value === '' || value === false) return null;
    return [el('dt', {}, term), el('dd', { dataset: testid ? { testid } : undefined }, value)];
  }

  /** A job that stopped part-way can go on where it stopped (POST /jobs/{id}/resume), in its folder,
      keeping the rows and images it has. */
  function resumable(status) {
    return FINISHED.has(status.status) && (status.partial || status.status !== 'completed');
  }

  /** "once (kept 40 rows, 0 images)": what each resume found, oldest first. */
  function resumesLine(resumes) {
    if (!resumes || !resumes.length) return '';
    const plural = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;
    const kept = resumes.map((r) => [
      r.rows_kept !== null && r.rows_kept !== undefined ? plural(r.rows_kept, 'row') : '',
      r.images_kept !== null && r.images_kept !== undefined ? plural(r.images_kept, 'image') : '',
    ].filter(Boolean).join(', ') + (r.automatic ? ', at a gateway restart' : '')).join('; then ');
    return `${resumes.length === 1 ? 'once' : `${resumes.length} times`} (kept ${kept})`;
  }

  /** Cancel, Resume, Download and Delete, side by side at the end of the job's head. */
  function actions(status, onCancel, onResume, onDelete) {
    const active = !FINISHED.has(status.status);
    return el('span', { class: 'job-actions', dataset: { testid: 'job-view-actions' } },
      active && el('button', {
        type: 'button', class: 'btn btn-small btn-danger', dataset: { testid: 'job-view-cancel' },
        onclick: () => onCancel(status.job_id),
      }, 'Cancel'),
      resumable(status) && onResume && el('button', {
        type: 'button', class: 'btn btn-small', dataset: { testid: 'job-view-resume' },
        title: 'Generate only the rows and images this job lacks, into the same folder',
        onclick: () => onResume(status.job_id),
      }, 'Resume'),
      !active && (status.files || []).length > 0 && el('a', {
        href: SDG.api.archiveUrl(status.job_id), download: '', class: 'btn btn-small',
        dataset: { testid: 'result-archive' }, title: 'The whole output folder as one ZIP file',
      }, 'Download all (.zip)'),
      !active && onDelete && el('button', {
        type: 'button', class: 'btn btn-small btn-danger', dataset: { testid: 'job-view-delete' },
        title: 'Forget this job and delete its output folder',
        onclick: () => onDelete(status),
      }, 'Delete'));
  }

  function renderSummary(status, onCancel, onResume, onDelete) {
    const box = byId('job-summary');
    // Polling re-renders this; an unchanged job is left alone and an opened Request stays open.
    const key = JSON.stringify(status);
    if (box.dataset.key === key) return;
    const sameJob = box.dataset.jobId === status.job_id;
    const requestOpen = sameJob && Boolean(box.querySelector('details.request[open]'));
    box.dataset.key = key;
    box.dataset.jobId = status.job_id;
    clear(box);
    append(box, [
      el('div', { class: 'job-view-head' },
        el('span', { class: 'job-type' }, status.type),
        el('code', { class: 'job-id' }, status.job_id),
        el('span', { class: `badge badge-${status.status}`, dataset: { testid: 'job-view-status' } }, status.status),
        status.partial && el('span', { class: 'badge badge-partial', dataset: { testid: 'job-view-partial' } }, 'partial'),
        actions(status, onCancel, onResume, onDelete)),
      progressBar(status, 'job-view-progress'),
      messageOf(status) && el('p', { class: 'job-message', dataset: { testid: 'job-view-message' } }, messageOf(status)),
      status.error && el('p', { class: 'job-error', role: 'alert', dataset: { testid: 'job-view-error' } }, status.error),
      el('dl', { class: 'facts' },
        definition('Progress', `${Math.round(status.progress || 0)}%`),
        definition('Counts', statsLine(status.stats), 'job-view-stats'),
        definition('Created', formatTime(status.created_at)),
        definition('Started', formatTime(status.started_at)),
        definition('Finished', formatTime(status.finished_at)),
        definition('Duration', status.started_at ? formatDuration(status.started_at, status.finished_at) : ''),
        definition('Resumed', resumesLine(status.resumes), 'job-view-resumes'),
        definition('Output', status.output_path && el('code', {}, status.output_path), 'job-view-output')),
      status.request && el('details', { class: 'request', open: requestOpen },
        el('summary', {}, 'Request'),
        el('pre', { class: 'mono' }, JSON.stringify(status.request, null, 2)))]);
  }

  /** manifest.model is one model's info, or one per service ({text: {...}, image: {...}}). */
  function manifestModels(manifest) {
    const model = manifest && manifest.model;
    if (!model || typeof model !== 'object') return model ? [{ label: String(model) }] : [];
    const one = (m, kind) => {
      const label = m.display_name || m.model_id || JSON.stringify(m);
      const demo = m.demo_model === true;
      // The badge says it once; a display name that says it too loses its copy.
      return { kind, label: demo ? label.replace(` (${DEMO_NOTE})`, '') : label, demo };
    };
    if ('model_id' in model || 'display_name' in model || 'demo_model' in model) return [one(model)];
    return Object.entries(model).filter(([, m]) => m && typeof m === 'object').map(([kind, m]) => one(m, kind));
  }

  async function loadJson(jobId, path) {
    return SDG.api.parseJson(await SDG.api.fileText(jobId, path));
  }

  function section(title, testid, ...content) {
    return el('section', { class: 'result-section', dataset: { testid } }, el('h3', {}, title), content);
  }

  async function renderResults(status) {
    const box = clear(byId('job-results'));
    const files = status.files || [];
    const id = status.job_id;
    if (!files.length) return;
    const has = (path) => files.includes(path);

    const modelBox = section('Model', 'result-model', el('p', { class: 'muted' }, 'loading manifest…'));
    const dataFile = files.find((f) => /^data\.(json|jsonl|csv|parquet)$/.test(f));
    const dataBox = dataFile && section('Rows', 'result-rows', el('p', { class: 'muted' }, 'loading…'));
    const images = files.filter((f) => /^images\/.*\.png$/i.test(f)).sort();
    const imageBox = images.length > 0 && section(
      `Images (${images.length})`, 'result-images', el('p', { class: 'muted' }, 'loading…'));
    const qualityBox = has('quality.json') && section('Quality', 'result-quality', el('p', { class: 'muted' }, 'loading…'));
    const fileList = section(`Files (${files.length})`, 'result-files',
      el('ul', { class: 'file-list' }, files.map((f) => el('li', {},
        el('a', { href: SDG.api.fileUrl(id, f), target: '_blank', rel: 'noopener', dataset: { testid: 'result-file' } }, f)))));
    append(box, [modelBox, dataBox, qualityBox, imageBox, fileList]);

    const manifest = has('manifest.json') ? loadJson(id, 'manifest.json').catch((err) => ({ error: err.message })) : Promise.resolve(null);
    const tasks = [manifest.then((m) => renderManifest(modelBox, m))];
    if (dataFile) tasks.push(renderRows(dataBox, id, dataFile));
    if (imageBox) tasks.push(renderImages(imageBox, id, images, has));
    if (qualityBox) {
      const placeholder = qualityBox.querySelector('p');
      tasks.push(loadJson(id, 'quality.json').then((report) => SDG.quality.render(placeholder, report))
        .catch((err) => { placeholder.textContent = `quality.json: ${err.message}`; }));
    }
    await Promise.all(tasks);
  }

  function renderManifest(box, manifest) {
    const body = box.querySelector('p');
    if (!manifest) { body.textContent = 'No manifest.json in this output.'; return; }
    if (manifest.error) { body.textContent = `manifest.json: ${manifest.error}`; return; }
    const models = manifestModels(manifest).map((m) => el('li', { dataset: { testid: 'result-model-label' } },
      m.kind && el('span', { class: 'muted' }, `${m.kind}: `),
      m.label,
      m.demo && el('span', { class: 'badge badge-demo', dataset: { testid: 'result-demo' } }, DEMO_NOTE)));
    const counts = manifest.counts && typeof manifest.counts === 'object'
      ? Object.entries(manifest.counts).map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`).join(' · ') : '';
    replace(body,
      el('ul', { class: 'model-list' }, models),
      el('dl', { class: 'facts' },
        definition('Seed', manifest.seed !== undefined && manifest.seed !== null && el('code', {}, String(manifest.seed)), 'result-seed'),
        definition('Counts', counts),
        definition('Partial', manifest.partial ? manifest.reason || 'yes' : ''),
        // Feature reuse: the images are approximate, and the manifest says so.
        definition('Images', manifest.images && manifest.images.note, 'result-images-note')));
  }

  async function renderRows(box, id, path) {
    const placeholder = box.querySelector('p');
    if (path.endsWith('.parquet')) {
      replace(placeholder, el('p', {}, 'Parquet cannot be previewed in the browser: ',
        el('a', { href: SDG.api.fileUrl(id, path), download: '' }, `download ${path}`), '.'));
      return;
    }
    try {
      const rows = SDG.preview.parseRows(path, await SDG.api.fileText(id, path));
      if (!rows.length) {
        // A job stopped before its first row still has its (empty) data file.
        replace(placeholder, el('p', { class: 'muted', dataset: { testid: 'result-rows-empty' } },
          `No rows were written to ${path}.`));
        return;
      }
      replace(placeholder,
        el('p', { class: 'muted small' }, `First ${rows.length} row${rows.length === 1 ? '' : 's'} of ${path}`),
        SDG.preview.rowsTable(rows, id));
    } catch (err) {
      placeholder.textContent = `Cannot preview ${path}: ${err.message}`;
    }
  }

  async function renderImages(box, id, images, has) {
    const placeholder = box.querySelector('p');
    let coco = {};
    let metadata = {};
    if (has('annotations/annotations.json')) {
      coco = await loadJson(id, 'annotations/annotations.json').then(SDG.preview.indexCoco).catch(() => ({}));
    }
    if (has('images/metadata.jsonl')) {
      const text = await SDG.api.fileText(id, 'images/metadata.jsonl').catch(() => '');
      for (const line of text.split('\n').filter((l) => l.trim())) {
        try {
          const meta = JSON.parse(line);
          const name = String(meta.file_name || meta.file || '').split('/').pop();
          if (name) metadata[name] = meta;
        } catch (_) { /* a malformed line only loses its caption */ }
      }
    }
    const shown = images.slice(0, SDG.preview.MAX_THUMBNAILS);
    replace(placeholder,
      shown.length < images.length && el('p', { class: 'muted small' }, `Showing ${shown.length} of ${images.length}.`),
      el('div', { class: 'thumbs' }, shown.map((path) => {
        const name = path.split('/').pop();
        return SDG.preview.thumbnail(id, path, coco[name], metadata[name]);
      })));
  }

  /** While a job runs, the last images it has finished (up to LATEST_IMAGES). The gateway writes
   * them under their final names, in index order, or in index order per shard when they are
   * sharded (whose written images SDG.shards knows). */
  function showLatest(status) {
    const done = FINISHED.has(status.status) ? 0 : ((status.stats || {}).images_done || 0);
    const written = SDG.shards.imagesWritten(status.job_id) || Array.from({ length: done }, (_, k) => k);
    const indexes = done ? written.slice(-LATEST_IMAGES) : [];
    const key = `${status.job_id} ${done} ${indexes.join(',')}`;
    if (key === latestFor) return;
    latestFor = key;
    const box = clear(byId('job-results'));
    if (!done) return;
    const paths = indexes.map((i) => `images/image_${String(i).padStart(5, '0')}.png`);
    append(box, [section(`Latest images (${done} done so far)`, 'result-latest',
      el('div', { class: 'thumbs' }, paths.map((path) => SDG.preview.thumbnail(status.job_id, path))))]);
  }

  /** Shows `status`: while it runs, its latest images; once finished, its results (loaded when
   * they are not on screen yet). */
  function show(status, onCancel, onResume, onDelete) {
    byId('job-view').hidden = false;
    if (byId('job-summary').dataset.jobId !== status.job_id) SDG.shards.reset();
    renderSummary(status, onCancel, onResume, onDelete);
    // Once its shards are in, the latest images of a job still on screen as it was.
    const shown = () => byId('job-summary').dataset.key === JSON.stringify(status) && !FINISHED.has(status.status);
    SDG.shards.update(status).then(() => { if (shown()) showLatest(status); });
    const ready = FINISHED.has(status.status) && (status.files || []).length > 0;
    if (!ready) {
      resultsFor = null;
      showLatest(status);
    } else if (resultsFor !== runKey(status)) {
      resultsFor = runKey(status);
      latestFor = null;
      renderResults(status);
    }
  }

  /** No job selected any more (it was deleted). */
  function hide() {
    byId('job-view').hidden = true;
    clear(byId('job-results'));
    SDG.shards.reset();
    resultsFor = latestFor = null;
  }

  SDG.jobView = { show, hide, progressBar, statsLine, messageOf, FINISHED };
})(window.SDG = window.SDG || {});
