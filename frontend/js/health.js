/* The header's health line and the demo-model banner, from GET /health (polled). */
(function (SDG) {
  'use strict';
  const { byId } = SDG.dom;

  const POLL_MS = 10000;
  const DEMO_MARK = 'demo model';

  /** `services` is keyed by kind or address; each entry (or list of entries) has a status and a
      model. Flattened to [{name, status, model}] for display, whatever the nesting. */
  function serviceEntries(services) {
    const out = [];
    const visit = (name, value) => {
      if (Array.isArray(value)) value.forEach((v, i) => visit(v && v.address ? v.address : `${name}[${i}]`, v));
      else if (value && typeof value === 'object') {
        const where = value.address || name;
        out.push({ ...value, name: value.kind ? `${value.kind} service at ${where}` : where });
      }
      else out.push({ name, status: String(value) });
    };
    if (services && typeof services === 'object') {
      for (const [name, value] of Object.entries(services)) visit(name, value);
    }
    return out;
  }

  function modelLabel(model) {
    if (!model) return 'unknown';
    if (typeof model === 'string') return model;
    return model.display_name || model.model_id || JSON.stringify(model);
  }

  function isDemo(body) {
    if (body.demo_models === true) return true;
    const labels = [body.text_model, body.image_model].map((m) => modelLabel(m).toLowerCase());
    return labels.some((label) => label.includes(DEMO_MARK));
  }

  function looksDown(label) {
    return /unavailable|not loaded|error|down|unreachable/i.test(label);
  }

  /** Hover text: each address of that kind with its state, device and dtype. */
  function serviceDetails(services, kind) {
    return serviceEntries(services)
      .filter((s) => s.kind === kind)
      .map((s) => {
        const model = s.model && typeof s.model === 'object' ? ` · ${s.model.device} ${s.model.dtype}` : '';
        return `${s.address || s.name}: ${s.status}${model}${s.error ? ` (${s.error})` : ''}`;
      });
  }

  function setService(id, label, details) {
    const item = byId(id);
    item.querySelector('.health-model').textContent = label;
    item.title = [label, ...details].join('\n');
    item.classList.toggle('down', looksDown(label));
    item.classList.toggle('up', !looksDown(label));
  }

  /** Also set from the jobs poll, which sees a job start or stop long before the next health poll. */
  function showJobsRunning(count) {
    byId('health-jobs').textContent = count;
  }

  function render({ httpStatus, body }) {
    const healthy = httpStatus === 200 && body.status === 'healthy';
    const pill = byId('health-status');
    pill.textContent = body.status || (healthy ? 'healthy' : 'degraded');
    pill.className = `pill ${healthy ? 'pill-ok' : 'pill-bad'}`;
    setService('health-text', modelLabel(body.text_model), serviceDetails(body.services, 'text'));
    setService('health-image', modelLabel(body.image_model), serviceDetails(body.services, 'image'));
    showJobsRunning(body.jobs_in_progress ?? '–');
    byId('demo-banner').hidden = !isDemo(body);

    const problem = byId('health-problem');
    if (healthy) {
      problem.hidden = true;
      return;
    }
    const down = serviceEntries(body.services)
      .filter((s) => s.status && !/^(serving|healthy|ok|up)$/i.test(String(s.status)))
      .map((s) => `${s.name}: ${s.status}${s.error ? ` (${s.error})` : ''}`);
    problem.textContent = `The gateway reports "${body.status || 'degraded'}" (HTTP ${httpStatus}). `
      + (down.length ? `Not serving: ${down.join('; ')}.` : 'Jobs may fail until every service is serving.');
    problem.hidden = false;
  }

  function renderUnreachable(err) {
    const pill = byId('health-status');
    pill.textContent = 'unreachable';
    pill.className = 'pill pill-bad';
    const problem = byId('health-problem');
    problem.textContent = err.message;
    problem.hidden = false;
  }

  async function refresh() {
    try {
      render(await SDG.api.health());
    } catch (err) {
      renderUnreachable(err);
    }
  }

  function start() {
    refresh();
    setInterval(refresh, POLL_MS);
  }

  SDG.health = { start, refresh, isDemo, modelLabel, showJobsRunning };
})(window.SDG = window.SDG || {});
