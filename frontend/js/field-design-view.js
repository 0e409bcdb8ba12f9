/* The row controls for how a field is made (see field-design.js): the sampler and its options
   or the expression, unique and order, and the `{name}` chips and notes under a description.
   `view` is what they use of the builder: names() of the other fields, watch(refresh) to follow
   edits elsewhere, rerender(), and the id of the Faker providers' datalist. */
(function (SDG) {
  'use strict';
  const { el, append, clear } = SDG.dom;
  const design = SDG.fieldDesign;

  /** A select of the other fields that follows their renames; `value` stays even when unknown. */
  function fieldSelect(view, attrs, value, onPick) {
    const select = el('select', attrs);
    const sync = () => {
      const names = view.names();
      const current = value();
      clear(select).append(el('option', { value: '' }, '(pick a field)'),
        ...[...new Set([...names, ...(current ? [current] : [])])].map((n) => el('option', { value: n }, n)));
      select.value = current;
    };
    select.addEventListener('change', () => onPick(select.value));
    sync();
    view.watch(sync);
    return select;
  }

  /** A row's "how it is made" options: the sampler and its options, or the expression; unique; order. */
  function controls(view, field, id, edited) {
    const problems = el('div', { class: 'field-problems', role: 'status', dataset: { testid: 'field-design-problems' } });
    const inputs = new Map(); // option key → its input, marked while a problem names it
    const showProblems = () => {
      const found = design.problems(field, view.names());
      clear(problems).append(...found.map((p) => el('div', {}, p.message)));
      problems.hidden = !found.length;
      const bad = new Set(found.map((p) => p.key));
      if (field.serverError) bad.add(field.serverError.key);
      for (const [key, node] of inputs) node.classList.toggle('invalid', bad.has(key));
    };
    view.watch(showProblems);
    const control = (key, label, node) => {
      inputs.set(key, node);
      return el('div', { class: 'form-field compact' }, el('label', { for: node.id }, label), node);
    };
    const parts = [];
    if (field.made === 'sampled') {
      const offered = [...new Set([...design.SAMPLERS_FOR[field.type], field.sampler])];
      const sampler = el('select', { id: `${id}-sampler`, dataset: { testid: 'field-sampler' } },
        offered.map((s) => el('option', { value: s }, s)));
      sampler.value = field.sampler;
      sampler.addEventListener('change', () => { field.sampler = sampler.value; view.rerender(); edited(); });
      parts.push(control('sampler', 'Sampler', sampler));
      for (const option of design.SAMPLERS[field.sampler] || []) {
        const inputId = `${id}-p-${option.key}`;
        const testid = `sampler-${option.key.replace(/_/g, '-')}`;
        let node;
        if (option.parse === 'field') {
          node = fieldSelect(view, { id: inputId, dataset: { testid } }, () => field.params[option.key] || '',
            (value) => { field.params[option.key] = value; edited(); });
        } else {
          node = el('input', {
            id: inputId, type: 'text', placeholder: option.placeholder, autocomplete: 'off', spellcheck: 'false',
            inputmode: option.parse === 'number' ? 'decimal' : undefined, dataset: { testid },
            list: option.key === 'provider' ? view.providers : undefined,
          });
          node.value = field.params[option.key] || '';
          node.addEventListener('input', () => { field.params[option.key] = node.value; edited(); });
        }
        parts.push(control(option.key, option.label, node));
      }
    }
    if (field.made === 'computed') {
      const expression = el('input', {
        id: `${id}-expression`, type: 'text', class: 'mono', placeholder: "name ~ ' (' ~ tier ~ ')'",
        autocomplete: 'off', spellcheck: 'false', dataset: { testid: 'field-expression' },
      });
      expression.value = field.expression;
      expression.addEventListener('input', () => { field.expression = expression.value; edited(); });
      parts.push(el('div', { class: 'form-field compact span-wide' },
        el('label', { for: expression.id }, 'Expression ', el('span', { class: 'hint' }, 'Jinja2, over the other fields; never written by the model')),
        expression));
      inputs.set('expression', expression);
    }
    const unique = el('input', { type: 'checkbox', id: `${id}-unique`, dataset: { testid: 'field-unique' } });
    unique.checked = field.unique;
    unique.addEventListener('change', () => { field.unique = unique.checked; edited(); });
    const orderOp = el('select', { id: `${id}-order`, dataset: { testid: 'field-order' } },
      el('option', { value: '' }, 'none'), Object.entries(design.ORDERS).map(([value, label]) => el('option', { value }, label)));
    orderOp.value = field.orderOp;
    const orderField = fieldSelect(view, { id: `${id}-order-field`, dataset: { testid: 'field-order-field' }, hidden: !field.orderOp },
      () => field.orderField, (value) => { field.orderField = value; edited(); });
    orderOp.addEventListener('change', () => {
      field.orderOp = orderOp.value;
      orderField.hidden = !field.orderOp;
      edited();
    });
    inputs.set('orderField', orderField);
    inputs.set('unique', unique);
    const rules = el('div', { class: 'field-rules' },
      el('span', { class: 'checkbox-field' }, unique, el('label', { for: unique.id }, 'unique across the job')),
      el('span', { class: 'field-order' },
        el('label', { for: orderOp.id }, 'Order: its value is'), orderOp,
        el('label', { for: orderField.id, class: 'sr-only' }, 'than the field'), orderField));
    showProblems();
    return el('div', { class: 'field-design', dataset: { testid: 'field-design' } }, parts.length > 0 && el('div', { class: 'field-design-options' }, parts), rules, problems);
  }

  /** Under a description: chips that insert `{name}`, and what its references mean for the row. */
  function references(view, field, input) {
    const chips = el('span', { class: 'chips', dataset: { testid: 'description-chips' } });
    const offer = el('span', { class: 'reference-chips' }, el('span', { class: 'muted small' }, 'Insert a field: '), chips);
    const note = el('p', { class: 'help field-references', dataset: { testid: 'description-references' } });
    const insert = (name) => {
      const at = input.selectionStart ?? input.value.length;
      const end = input.selectionEnd ?? at;
      // After a typed "{", the chip finishes the reference instead of opening another.
      const opened = input.value[at - 1] === '{';
      input.setRangeText(opened ? `${name}}` : `{${name}}`, at, end, 'end');
      input.focus();
      input.dispatchEvent(new Event('input', { bubbles: true }));
    };
    const show = () => {
      const names = view.names();
      const refs = design.references(field.description);
      const unknown = refs.filter((r) => !names.includes(r));
      const known = refs.filter((r) => names.includes(r));
      // Typing "{" highlights the chips; they are there all along for the mouse.
      chips.classList.toggle('chips-offered', input.value.slice(0, input.selectionStart ?? 0).endsWith('{'));
      clear(chips).append(...names.map((n) => el('button', {
        type: 'button', class: 'chip', dataset: { testid: 'description-chip' }, 'aria-label': `Insert {${n}} into the description`,
        onmousedown: (event) => event.preventDefault(), // keep the caret where it is
        onclick: () => insert(n),
      }, `{${n}}`)));
      append(clear(note), [
        known.length > 0 && el('span', { dataset: { testid: 'description-after' } }, `Written after ${known.join(', ')}, with their values in its prompt. `),
        unknown.map((n) => el('span', { class: 'reference-unknown', dataset: { testid: 'description-unknown' } },
          n === field.name.trim() ? `{${n}} is this field itself. ` : `{${n}} names no field (write {{ for a literal brace). `))]);
      note.hidden = !refs.length;
      offer.hidden = !names.length;
      input.classList.toggle('invalid', unknown.length > 0);
    };
    input.addEventListener('keyup', show);
    view.watch(show);
    show();
    return [offer, note];
  }

  SDG.fieldDesignView = { controls, references };
})(window.SDG = window.SDG || {});
