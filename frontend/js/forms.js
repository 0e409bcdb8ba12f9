/* The three generator forms: read the inputs into the request bodies of POST /generate/*, submit,
   and show the gateway's `detail` next to the form when it refuses. Values go out as typed; the
   gateway is the one place that validates them. */
(function (SDG) {
  'use strict';
  const { byId, el, clear } = SDG.dom;

  /** Input the page can reject before the gateway sees it: a required field left empty. */
  class FormInputError extends Error {
    constructor(message, inputId) {
      super(message);
      this.inputId = inputId;
    }
  }

  /** '' → undefined (omitted from the JSON body); a number when it parses, else the text as typed
      so that the gateway's message names the bad value. */
  function num(id) {
    const text = byId(id).value.trim();
    if (text === '') return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }

  /** A seed as typed. Past 2^53 a JavaScript number would round it (and the run would not be the
      one asked for), so its digits go as a string, which the gateway reads as that integer. */
  function seed(id) {
    const text = byId(id).value.trim();
    return /^\d+$/.test(text) && !Number.isSafeInteger(Number(text)) ? text : num(id);
  }

  /** num() for a field without an "optional" mark. Left out of the body, it would not be an error
      but the gateway's default (100 rows, 30 steps), which is not what an emptied field asks for. */
  function required(id, field) {
    const value = num(id);
    if (value === undefined) {
      const label = document.querySelector(`label[for="${id}"]`).firstChild.textContent.trim();
      throw new FormInputError(`${field}: the ${label} field is empty; enter a number`, id);
    }
    return value;
  }

  function text(id) {
    const value = byId(id).value.trim();
    return value === '' ? undefined : value;
  }

  function lines(id) {
    // Blank lines only separate prompts; they are not prompts.
    return byId(id).value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  }

  function list(id) {
    const value = text(id);
    return value === undefined ? undefined : value.split(',').map((v) => v.trim()).filter(Boolean);
  }

  function annotations(prefix) {
    return ['bbox', 'segmentation', 'caption'].filter((kind) => byId(`${prefix}-ann-${kind}`).checked);
  }

  /** Fields shared by the images and unified forms (same ids after the prefix). */
  function imageOptions(prefix) {
    return {
      prompts: lines(`${prefix}-prompts`),
      resolution: [required(`${prefix}-width`, 'resolution'), required(`${prefix}-height`, 'resolution')],
      annotations: annotations(prefix),
      negative_prompt: text(`${prefix}-negative`),
      num_inference_steps: required(`${prefix}-steps`, 'num_inference_steps'),
      guidance_scale: required(`${prefix}-guidance`, 'guidance_scale'),
      scheduler: byId(`${prefix}-scheduler`).value,
      labels: list(`${prefix}-labels`),
      // Left out at 1, the default, so that a plain request reads as before.
      feature_reuse: Number(byId(`${prefix}-reuse`).value) > 1 ? Number(byId(`${prefix}-reuse`).value) : undefined,
    };
  }

  const bodies = {
    text: (builders) => ({
      schema: builders.text.schema(),
      num_samples: required('text-num-samples', 'num_samples'),
      output_format: byId('text-format').value,
      seed: seed('text-seed'),
      temperature: num('text-temperature'),
      instructions: text('text-instructions'),
      keep_duplicates: byId('text-keep-duplicates').checked || undefined,
      seed_data: SDG.seedData.body(),
    }),
    images: () => ({
      ...imageOptions('images'),
      num_images: required('images-num', 'num_images'),
      seed: seed('images-seed'),
    }),
    unified: (builders) => ({
      schema: builders.unified.schema(),
      num_samples: required('unified-num-samples', 'num_samples'),
      num_images: num('unified-num-images'),
      output_format: byId('unified-format').value,
      seed: seed('unified-seed'),
      ...imageOptions('unified'),
    }),
  };

  function showError(kind, message) {
    const box = byId(`${kind}-error`);
    clear(box);
    if (!message) {
      box.hidden = true;
      return;
    }
    // 422s list one problem per line; keep them as separate lines.
    message.split('\n').forEach((line) => box.append(el('div', {}, line)));
    box.hidden = false;
  }

  // kind → {jobId, listed}: the job a form's "Queued …" note names, until it has finished or gone.
  const queued = new Map();

  function showNote(kind, jobId) {
    byId(`${kind}-note`).textContent = jobId ? `Queued ${jobId}` : '';
    if (jobId) queued.set(kind, { jobId, listed: false });
    else queued.delete(kind);
  }

  /** Called with every jobs poll (job id → status): a note goes once its job has finished, or has
      left the list (deleted) after being in it. A poll that began before the submit has not
      listed the job yet, which is not the same as gone. */
  function settleNotes(states) {
    for (const [kind, note] of queued) {
      const state = states.get(note.jobId);
      if (state !== undefined) note.listed = true;
      if ((state === undefined && note.listed) || SDG.jobView.FINISHED.has(state)) showNote(kind, null);
    }
  }

  async function submit(kind, builders, onQueued) {
    const button = byId(`submit-${kind}`);
    showError(kind, '');
    showNote(kind, null);
    let body;
    try {
      body = bodies[kind](builders);
    } catch (err) {
      if (!(err instanceof SDG.SchemaInputError || err instanceof FormInputError)) throw err;
      showError(kind, err.message);
      if (err.inputId) {
        const input = byId(err.inputId);
        const folded = input.closest('details');
        if (folded) folded.open = true;
        input.focus();
      }
      return;
    }
    button.disabled = true;
    try {
      const reply = await SDG.api.post(`/generate/${kind}`, body);
      showNote(kind, reply.job_id);
      onQueued(reply.job_id);
    } catch (err) {
      const status = err.status ? `${err.status}: ` : '';
      showError(kind, `${status}${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Clickable `{field}` chips under the unified prompts, inserted at the caret. */
  function renderPlaceholders(names) {
    const box = byId('unified-placeholders');
    const prompts = byId('unified-prompts');
    clear(box);
    if (!names.length) box.append(el('span', { class: 'muted' }, 'add fields to the schema first'));
    names.forEach((name) => box.append(el('button', {
      type: 'button', class: 'chip', dataset: { testid: 'placeholder-chip' },
      'aria-label': `Insert {${name}} into the prompts`,
      onclick: () => {
        const at = prompts.selectionStart ?? prompts.value.length;
        const token = `{${name}}`;
        prompts.setRangeText(token, at, prompts.selectionEnd ?? at, 'end');
        prompts.focus();
      },
    }, `{${name}}`)));
  }

  function init(onQueued) {
    const builders = {
      text: new SDG.SchemaBuilder(byId('text-schema'), {
        idPrefix: 'text',
        initial: [
          { name: 'customer_name', type: 'string', description: 'full name' },
          { name: 'age', type: 'int', minimum: '18', maximum: '90' },
          { name: 'email', type: 'email' },
          { name: 'plan', type: 'enum', enumValues: 'free, pro, enterprise' },
          { name: 'signup_date', type: 'date' },
        ],
      }),
      unified: new SDG.SchemaBuilder(byId('unified-schema'), {
        idPrefix: 'unified',
        initial: [
          { name: 'product', type: 'string', description: 'a household product' },
          { name: 'color', type: 'enum', enumValues: 'red, green, blue' },
          { name: 'price', type: 'float', minimum: '1', maximum: '500' },
        ],
        onChange: renderPlaceholders,
      }),
    };
    renderPlaceholders(builders.unified.fieldNames());
    SDG.seedData.init();
    for (const kind of Object.keys(bodies)) {
      const form = byId(`panel-${kind}`);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        submit(kind, builders, onQueued);
      });
      // An error is about the input as it was submitted; once that input changes, it is stale.
      form.addEventListener('input', () => showError(kind, ''));
    }
    return builders;
  }

  SDG.forms = { init, settleNotes };
})(window.SDG = window.SDG || {});
