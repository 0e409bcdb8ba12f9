/* The three generator forms: read the inputs into the request bodies of POST /generate/*, submit,
   and show the gateway's `detail` next to the form when it refuses. Values go out as typed; the
   gateway is the one place that validates them. */
(function (SDG) {
  'use strict';
  const { byId, el, clear } = SDG.dom;

  /** '' → undefined (omitted from the JSON body); a number when it parses, else the text as typed
      so that the gateway's message names the bad value. */
  function num(id) {
    const text = byId(id).value.trim();
    if (text === '') return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
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
      resolution: [num(`${prefix}-width`), num(`${prefix}-height`)],
      annotations: annotations(prefix),
      negative_prompt: text(`${prefix}-negative`),
      num_inference_steps: num(`${prefix}-steps`),
      guidance_scale: num(`${prefix}-guidance`),
      scheduler: byId(`${prefix}-scheduler`).value,
      labels: list(`${prefix}-labels`),
      // Left out at 1, the default, so that a plain request reads as before.
      feature_reuse: Number(byId(`${prefix}-reuse`).value) > 1 ? Number(byId(`${prefix}-reuse`).value) : undefined,
    };
  }

  const bodies = {
    text: (builders) => ({
      schema: builders.text.schema(),
      num_samples: num('text-num-samples'),
      output_format: byId('text-format').value,
      seed: num('text-seed'),
      temperature: num('text-temperature'),
      instructions: text('text-instructions'),
      keep_duplicates: byId('text-keep-duplicates').checked || undefined,
    }),
    images: () => ({
      ...imageOptions('images'),
      num_images: num('images-num'),
      seed: num('images-seed'),
    }),
    unified: (builders) => ({
      schema: builders.unified.schema(),
      num_samples: num('unified-num-samples'),
      num_images: num('unified-num-images'),
      output_format: byId('unified-format').value,
      seed: num('unified-seed'),
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

  async function submit(kind, builders, onQueued) {
    const note = byId(`${kind}-note`);
    const button = byId(`submit-${kind}`);
    showError(kind, '');
    note.textContent = '';
    let body;
    try {
      body = bodies[kind](builders);
    } catch (err) {
      if (!(err instanceof SDG.SchemaInputError)) throw err;
      showError(kind, err.message);
      return;
    }
    button.disabled = true;
    try {
      const reply = await SDG.api.post(`/generate/${kind}`, body);
      note.textContent = `Queued ${reply.job_id}`;
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
    for (const kind of Object.keys(bodies)) {
      byId(`panel-${kind}`).addEventListener('submit', (event) => {
        event.preventDefault();
        submit(kind, builders, onQueued);
      });
    }
    return builders;
  }

  SDG.forms = { init };
})(window.SDG = window.SDG || {});
