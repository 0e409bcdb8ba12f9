/* The jobs panel: GET /jobs plus GET /status/{id} for each job that is still moving, refreshed on
   each event of a moving job's stream (GET /jobs/{id}/events) and polled every few seconds for
   jobs made elsewhere. List items are updated in place rather than rebuilt, so a click that lands
   mid-poll is not lost. */
(function (SDG) {
  'use strict';
  const { el, byId, formatTime } = SDG.dom;

  const ACTIVE_MS = 1000;
  const IDLE_MS = 5000;
  // Statuses only change while a job runs; beyond this many, older finished jobs show list data only.
  const MAX_DETAILED = 50;

  const statuses = new Map(); // job id → last /status body
  const streams = new Map(); // job id → EventSource of a job still moving
  const items = new Map(); // job id → <li>
  let selected = null;
  let timer = null;
  let cancelling = null; // job id whose "Cancelling…" notice shows until the job has stopped
  let resuming = null; // job id whose "Resuming…" notice shows until the resumed run has ended
  let onUpdate = () => {}; // told every listed job's status (job id → status) after each poll

  const isActive = (job) => !SDG.jobView.FINISHED.has(job.status);

  function createItem(jobId) {
    // The whole card selects the job (its progress bar and id are where eyes and clicks land);
    // the header button is what keyboards reach. Clicks on the card's buttons are their own.
    const li = el('li', {
      class: 'job', dataset: { testid: 'job-item', jobId },
      onclick: (event) => { if (!event.target.closest('button')) select(jobId); },
    });
    li.append(
      el('button', {
        type: 'button', class: 'job-select', 'aria-pressed': 'false', dataset: { testid: 'job-select' },
        onclick: () => select(jobId),
      },
      el('span', { class: 'job-type', dataset: { testid: 'job-type' } }),
      el('span', { class: 'badge', dataset: { testid: 'job-status' } }),
      el('span', { class: 'badge badge-partial', dataset: { testid: 'job-partial' }, hidden: true }, 'partial'),
      el('time', { class: 'job-time muted small' })),
      el('div', { class: 'job-progress-slot' }),
      el('p', { class: 'job-message', dataset: { testid: 'job-message' }, hidden: true }),
      el('p', { class: 'job-error', dataset: { testid: 'job-error' }, hidden: true }),
      el('div', { class: 'job-foot' },
        el('code', { class: 'job-id muted small' }, jobId),
        el('button', {
          type: 'button', class: 'btn btn-small btn-danger', dataset: { testid: 'job-cancel' }, hidden: true,
          'aria-label': `Cancel job ${jobId}`, onclick: () => cancel(jobId),
        }, 'Cancel')));
    return li;
  }

  function updateItem(li, job) {
    const status = statuses.get(job.job_id) || job;
    const merged = { ...job, ...status, status: status.status || job.status };
    li.dataset.status = merged.status;
    li.classList.toggle('selected', selected === job.job_id);
    li.querySelector('.job-select').setAttribute('aria-pressed', String(selected === job.job_id));
    li.querySelector('[data-testid="job-type"]').textContent = merged.type;
    const badge = li.querySelector('[data-testid="job-status"]');
    badge.textContent = merged.status;
    badge.className = `badge badge-${merged.status}`;
    li.querySelector('[data-testid="job-partial"]').hidden = !merged.partial;
    li.querySelector('.job-time').textContent = formatTime(merged.created_at);
    li.querySelector('.job-progress-slot').replaceChildren(SDG.jobView.progressBar(merged, 'job-progress'));
    const message = li.querySelector('[data-testid="job-message"]');
    const detail = SDG.jobView.messageOf(merged) || (merged.error ? '' : SDG.jobView.statsLine(merged.stats));
    message.textContent = detail || '';
    message.hidden = !detail;
    const error = li.querySelector('[data-testid="job-error"]');
    error.textContent = merged.error || '';
    error.hidden = !merged.error;
    li.querySelector('[data-testid="job-cancel"]').hidden = !isActive(merged);
  }

  async function fetchStatuses(jobs) {
    const wanted = jobs.slice(0, MAX_DETAILED).filter((job) => {
      const known = statuses.get(job.job_id);
      return !known || isActive(known) || known.status !== job.status || job.job_id === selected;
    });
    await Promise.all(wanted.map(async (job) => {
      try {
        statuses.set(job.job_id, await SDG.api.get(`/status/${encodeURIComponent(job.job_id)}`));
      } catch (err) {
        // One missing status (a job removed meanwhile) must not stop the others from updating.
        if (err.status !== 404) throw err;
      }
    }));
  }

  function render(jobs) {
    const list = byId('job-list');
    byId('jobs-empty').hidden = jobs.length > 0;
    const current = new Set(jobs.map((j) => j.job_id));
    for (const [id, li] of items) {
      if (!current.has(id)) { li.remove(); items.delete(id); }
    }
    jobs.forEach((job, index) => {
      let li = items.get(job.job_id);
      if (!li) { li = createItem(job.job_id); items.set(job.job_id, li); }
      updateItem(li, job);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    if (selected && statuses.has(selected)) SDG.jobView.show(statuses.get(selected), cancel, resume, remove);
    if (cancelling && statuses.has(cancelling) && !isActive(statuses.get(cancelling))) {
      byId('jobs-notice').textContent = '';
      cancelling = null;
    }
    if (resuming && statuses.has(resuming) && !isActive(statuses.get(resuming))) {
      byId('jobs-notice').textContent = '';
      resuming = null;
    }
    byId('jobs-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    onUpdate(new Map(jobs.map((job) => [job.job_id, (statuses.get(job.job_id) || job).status])));
  }

  /** Opens a stream for each moving job and closes those of jobs that stopped or left the list. */
  function follow(jobs) {
    if (typeof EventSource === 'undefined') return;
    const moving = new Set(jobs.filter((job) => isActive(statuses.get(job.job_id) || job)).map((job) => job.job_id));
    for (const [id, source] of streams) {
      if (!moving.has(id)) { source.close(); streams.delete(id); }
    }
    for (const id of moving) {
      if (streams.has(id)) continue;
      const source = new EventSource(SDG.api.eventsUrl(id));
      const onEvent = (event) => {
        // The server ends the stream once the job finishes; closing first stops a reconnect.
        if (SDG.jobView.FINISHED.has(JSON.parse(event.data).status)) { source.close(); streams.delete(id); }
        refresh();
      };
      source.addEventListener('state', onEvent);
      source.addEventListener('progress', onEvent);
      streams.set(id, source);
    }
  }

  let inFlight = false;
  let again = false;

  /** One poll. A call during a poll (a submit, a click) runs right after it instead of alongside,
      so there is only ever one timer chain. */
  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    clearTimeout(timer);
    let anyActive = false;
    const errorBox = byId('jobs-error');
    try {
      const jobs = await SDG.api.get('/jobs');
      await fetchStatuses(jobs);
      render(jobs);
      follow(jobs);
      anyActive = jobs.some((job) => isActive(statuses.get(job.job_id) || job));
      errorBox.hidden = true;
    } catch (err) {
      errorBox.textContent = `Cannot load jobs: ${err.message}`;
      errorBox.hidden = false;
    } finally {
      inFlight = false;
    }
    if (again) {
      again = false;
      refresh();
    } else {
      // Streams refresh moving jobs as they change; poll fast only where there are none.
      timer = setTimeout(refresh, anyActive && !streams.size ? ACTIVE_MS : IDLE_MS);
    }
  }

  function select(jobId) {
    selected = jobId;
    statuses.delete(jobId); // fetch it fresh now rather than show a stale copy
    refresh();
  }

  async function cancel(jobId) {
    const notice = byId('jobs-notice');
    notice.textContent = '';
    try {
      await SDG.api.post(`/jobs/${encodeURIComponent(jobId)}/cancel`);
      notice.textContent = `Cancelling ${jobId}…`;
      cancelling = jobId;
    } catch (err) {
      // 409: it finished while the button was on screen; the next poll shows how.
      notice.textContent = err.status === 409 ? `Job ${jobId} had already finished.` : `Cancel failed: ${err.message}`;
    }
    refresh();
  }

  async function resume(jobId) {
    const notice = byId('jobs-notice');
    notice.textContent = '';
    try {
      const status = await SDG.api.post(`/jobs/${encodeURIComponent(jobId)}/resume`);
      notice.textContent = `Resuming ${jobId}: ${status.message.replace(/^queued to resume: /, '')}`;
      statuses.set(jobId, status); // queued now: the notice stays until the resumed run ends
      resuming = jobId;
    } catch (err) {
      notice.textContent = `Resume failed: ${err.message}`;
    }
    refresh();
  }

  async function remove(status) {
    const folder = status.output_path ? ` and its output folder ${status.output_path}` : '';
    if (!window.confirm(`Delete job ${status.job_id}${folder}? This cannot be undone.`)) return;
    const notice = byId('jobs-notice');
    notice.textContent = '';
    try {
      const deleted = await SDG.api.delete(`/jobs/${encodeURIComponent(status.job_id)}`);
      notice.textContent = `${deleted.message.charAt(0).toUpperCase()}${deleted.message.slice(1)}.`;
      statuses.delete(status.job_id);
      if (selected === status.job_id) {
        selected = null;
        SDG.jobView.hide();
      }
    } catch (err) {
      notice.textContent = `Delete failed: ${err.message}`;
    }
    refresh();
  }

  /** Starts polling; `listener` hears each poll's job statuses (job id → status). */
  function start(listener) {
    onUpdate = listener;
    refresh();
  }

  SDG.jobs = { refresh, select, cancel, resume, remove, start };
})(window.SDG = window.SDG || {});
