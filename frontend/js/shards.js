/* The selected job's shards (GET /jobs/{id}/shards): a strip of cells for its latest run, one per
   shard, coloured by state, a shard retried on another replica outlined; its title says the rest.
   Fetched again as the job moves, one request at a time. */
(function (SDG) {
  'use strict';
  const { el, byId, clear, append } = SDG.dom;

  let shownKey = null;
  let inFlight = false;
  let cached = { jobId: null, shards: [] };

  function latestRun(shards) {
    const run = Math.max(...shards.map((s) => s.run));
    return shards.filter((s) => s.run === run);
  }

  function cell(shard) {
    const unit = shard.kind === 'images' ? 'images' : 'rows';
    const what = shard.table ? `${shard.table} shard ${shard.shard}` : `${shard.kind} shard ${shard.shard}`;
    const title = [`${what}: ${shard.state}`, `${shard.done}/${shard.size} ${unit}`,
      shard.replica && `on ${shard.replica}`, shard.attempts > 1 && `attempt ${shard.attempts}`,
      shard.error && `lost before: ${shard.error}`].filter(Boolean).join(' · ');
    return el('span', {
      class: `shard shard-${shard.state}${shard.attempts > 1 ? ' shard-retried' : ''}`, title, role: 'img', 'aria-label': title,
      dataset: { testid: 'shard', state: shard.state, attempts: String(shard.attempts) },
    });
  }

  function render(shards) {
    const box = clear(byId('job-shards'));
    if (!shards.length) return;
    const run = latestRun(shards);
    const replicas = new Set(run.map((s) => s.replica).filter(Boolean));
    const done = run.filter((s) => s.state === 'completed').length;
    append(box, [el('div', { class: 'shards' },
      el('p', { class: 'muted small', dataset: { testid: 'shards-summary' } },
        `Shards: ${done} of ${run.length} done, over ${replicas.size} replica${replicas.size === 1 ? '' : 's'}`),
      el('div', { class: 'shards-strip' }, run.map(cell)))]);
  }

  /** Loads and shows `status`'s shards when the job moved since they were last shown. */
  async function update(status) {
    const key = `${status.job_id} ${status.status} ${status.progress} ${JSON.stringify(status.stats)}`;
    if (key === shownKey || inFlight) return;
    inFlight = true;
    try {
      const shards = await SDG.api.get(`/jobs/${encodeURIComponent(status.job_id)}/shards`);
      cached = { jobId: status.job_id, shards };
      shownKey = key;
      render(shards);
    } catch (_) {
      // Shards are a view on the job, not the job: its status shows what matters.
    } finally {
      inFlight = false;
    }
  }

  /** The indexes of the images the latest run's shards have written, when its images are sharded;
      null otherwise (images are then written in index order). */
  function imagesWritten(jobId) {
    if (cached.jobId !== jobId) return null;
    const shards = cached.shards.filter((s) => s.kind === 'images');
    if (!shards.length) return null;
    return latestRun(shards).flatMap((s) => Array.from({ length: s.done }, (_, k) => s.first + k)).sort((a, b) => a - b);
  }

  function reset() {
    shownKey = null;
    cached = { jobId: null, shards: [] };
    clear(byId('job-shards'));
  }

  SDG.shards = { update, imagesWritten, reset };
})(window.SDG = window.SDG || {});
