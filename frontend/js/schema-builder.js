/* The visual schema builder: rows of field name + type + constraints that turn into the JSON
   Schema subset sdg/schema.py accepts, with a toggle to edit that JSON directly, and an import of
   any JSON Schema (rows for what they hold, raw JSON for the rest; see schema-import.js). Each
   row also says how its value is made (field-design.js: the `x-sdg` keyword). Checks here are
   those a JSON object cannot express (empty or repeated names) and a sampler's options; every
   other rule is the gateway's, which names the field in its 400, shown by that field's row. */
(function (SDG) {
  'use strict';
  const { el, clear } = SDG.dom;

  // Builder type → JSON Schema. `kind` decides which constraints a row offers.
  const TYPES = {
    string: { schema: { type: 'string' }, kind: 'text' },
    int: { schema: { type: 'integer' }, kind: 'number' },
    float: { schema: { type: 'number' }, kind: 'number' },
    bool: { schema: { type: 'boolean' }, kind: 'plain' },
    date: { schema: { type: 'string', format: 'date' }, kind: 'plain' },
    datetime: { schema: { type: 'string', format: 'date-time' }, kind: 'plain' },
    email: { schema: { type: 'string', format: 'email' }, kind: 'plain' },
    uuid: { schema: { type: 'string', format: 'uuid' }, kind: 'plain' },
    enum: { schema: { type: 'string' }, kind: 'enum' },
  };
  const FORMAT_TYPES = { date: 'date', 'date-time': 'datetime', email: 'email', uuid: 'uuid' };
  const SHORTHAND = {
    string: 'string', str: 'string', int: 'int', integer: 'int', float: 'float', number: 'float',
    bool: 'bool', boolean: 'bool', date: 'date', datetime: 'datetime', email: 'email', uuid: 'uuid',
  };
  // The keywords a builder row can hold; a raw schema using anything else stays in raw mode.
  const ROW_KEYWORDS = new Set(['type', 'format', 'enum', 'minimum', 'maximum', 'pattern', 'maxLength', 'description', 'x-sdg']);
  const design = SDG.fieldDesign;
  const designView = SDG.fieldDesignView;

  class SchemaInputError extends Error {}

  function blankField(overrides) {
    return {
      name: '', type: 'string', nullable: false, enumValues: '', minimum: '', maximum: '',
      pattern: '', maxLength: '', description: '', open: false, ...design.blankDesign(), ...overrides,
    };
  }

  function numberOrText(text) {
    const n = Number(text);
    // Sent as typed when it is not a number, so the gateway's message names the bad value.
    return text.trim() !== '' && Number.isFinite(n) ? n : text;
  }

  /** One builder row → a JSON Schema property. */
  function fieldSchema(field) {
    const { schema, kind } = TYPES[field.type];
    const out = { ...schema };
    if (kind === 'enum') {
      out.enum = field.enumValues.split(',').map((v) => v.trim()).filter((v) => v !== '');
    }
    if (kind === 'number') {
      if (field.minimum.trim() !== '') out.minimum = numberOrText(field.minimum);
      if (field.maximum.trim() !== '') out.maximum = numberOrText(field.maximum);
    }
    if (kind === 'text') {
      if (field.pattern !== '') out.pattern = field.pattern;
      if (field.maxLength.trim() !== '') out.maxLength = numberOrText(field.maxLength);
    }
    if (field.description.trim() !== '') out.description = field.description.trim();
    const xsdg = design.xsdg(field);
    if (xsdg) out['x-sdg'] = xsdg;
    if (field.nullable) out.type = [out.type, 'null'];
    return out;
  }

  /** A JSON Schema property → a builder row, or null when a row cannot hold it exactly. */
  function fieldFromSchema(name, spec) {
    if (!spec || typeof spec !== 'object' || !Object.hasOwn(spec, 'x-sdg')) return plainFieldFromSchema(name, spec);
    const { 'x-sdg': xsdg, ...rest } = spec;
    const row = plainFieldFromSchema(name, rest);
    const made = row && design.designFromXsdg(xsdg);
    return made ? { ...row, ...made } : null;
  }

  function plainFieldFromSchema(name, spec) {
    if (typeof spec === 'string') {
      const type = SHORTHAND[spec.toLowerCase()];
      return type ? blankField({ name, type }) : null;
    }
    if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return null;
    if (Object.keys(spec).some((key) => !ROW_KEYWORDS.has(key))) return null;
    const types = Array.isArray(spec.type) ? spec.type : [spec.type];
    const nullable = types.includes('null');
    const concrete = types.filter((t) => t !== 'null');
    if (concrete.length !== 1) return null;
    const field = blankField({ name, nullable, description: spec.description || '' });
    const base = concrete[0];
    if (spec.enum !== undefined) {
      const values = (spec.enum || []).filter((v) => v !== null);
      // Rows hold string enums as comma-separated text; anything else would not survive the trip.
      if (base !== 'string' || values.some((v) => typeof v !== 'string' || v.includes(','))) return null;
      return { ...field, type: 'enum', enumValues: values.join(', ') };
    }
    if (spec.format !== undefined) {
      return base === 'string' && FORMAT_TYPES[spec.format] ? { ...field, type: FORMAT_TYPES[spec.format] } : null;
    }
    if (base === 'integer' || base === 'number') {
      if (spec.pattern !== undefined || spec.maxLength !== undefined) return null;
      return {
        ...field,
        type: base === 'integer' ? 'int' : 'float',
        minimum: spec.minimum !== undefined ? String(spec.minimum) : '',
        maximum: spec.maximum !== undefined ? String(spec.maximum) : '',
      };
    }
    if (base === 'boolean' || base === 'string') {
      if (spec.minimum !== undefined || spec.maximum !== undefined) return null;
      if (base === 'boolean') return spec.pattern === undefined && spec.maxLength === undefined ? { ...field, type: 'bool' } : null;
      return {
        ...field,
        type: 'string',
        pattern: spec.pattern || '',
        maxLength: spec.maxLength !== undefined ? String(spec.maxLength) : '',
      };
    }
    return null;
  }

  /** Any schema form the gateway accepts → builder rows, or null when one of them does not fit. */
  function fieldsFromSchema(schema) {
    if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return null;
    let properties = schema;
    if (schema.type === 'object' && schema.properties && typeof schema.properties === 'object') {
      const extra = Object.keys(schema).filter((k) => !['type', 'properties', 'required', 'additionalProperties', '$schema', 'description', 'title'].includes(k));
      // Optional fields and extra properties have no row control, so such a schema stays raw.
      const names = Object.keys(schema.properties);
      const required = schema.required === undefined ? names : schema.required;
      if (extra.length || schema.additionalProperties === true || names.some((n) => !required.includes(n))) return null;
      properties = schema.properties;
    }
    const fields = [];
    for (const [name, spec] of Object.entries(properties)) {
      const field = fieldFromSchema(name, spec);
      if (!field) return null;
      fields.push(field);
    }
    return fields;
  }

  class SchemaBuilder {
    /**
     * @param {HTMLElement} root     where the builder renders itself
     * @param {string} idPrefix      prefix for every element id (ids must be unique per page)
     * @param {object[]} initial     starting rows (partial field objects)
     * @param {function} onChange    called with the current field names after every edit
     */
    constructor(root, { idPrefix, initial = [], onChange = () => {} }) {
      this.root = root;
      this.prefix = idPrefix;
      this.onChange = onChange;
      this.fields = initial.map((f) => blankField(f));
      this.nextKey = 0;
      this.fields.forEach((f) => { f.key = this.nextKey++; });
      this.rawMode = false;
      this.imported = null; // {rootKeys, hasRoot, names} while an imported schema is shown
      this.beforeImport = null; // the builder as it was, for "Clear import"
      this.build();
      this.renderRows();
    }

    build() {
      const p = this.prefix;
      this.rawToggle = el('input', { type: 'checkbox', id: `${p}-raw-toggle`, dataset: { testid: `${p}-raw-toggle` } });
      this.rawToggle.addEventListener('change', () => this.setRawMode(this.rawToggle.checked));
      this.rows = el('div', { class: 'field-rows', dataset: { testid: `${p}-fields` } });
      this.addButton = el('button', {
        type: 'button', class: 'btn btn-ghost', dataset: { testid: `${p}-add-field` },
        onclick: () => this.addField(),
      }, '+ Add field');
      this.visual = el('div', { class: 'schema-visual' },
        el('div', { class: 'field-head', 'aria-hidden': 'true' },
          el('span', {}, 'Field name'), el('span', {}, 'Type'), el('span', {}, 'Values / options')),
        this.rows, this.addButton);
      this.rawText = el('textarea', {
        id: `${p}-raw`, class: 'mono', rows: 12, spellcheck: 'false', dataset: { testid: `${p}-raw` },
      });
      this.rawText.addEventListener('input', () => this.onChange(this.fieldNames()));
      this.raw = el('div', { class: 'schema-raw', hidden: true },
        el('label', { for: `${p}-raw` }, 'JSON Schema (or SDG shorthand, e.g. {"age": "int"})'),
        this.rawText);
      this.message = el('p', { class: 'schema-message', role: 'status', dataset: { testid: `${p}-schema-message` }, hidden: true });
      this.importButton = el('button', {
        type: 'button', class: 'btn btn-small btn-ghost', 'aria-expanded': 'false', 'aria-controls': `${p}-import-panel`,
        dataset: { testid: `${p}-import-open` }, onclick: () => this.showImportPanel(this.importPanel.hidden),
      }, 'Import JSON Schema');
      this.buildImport();
      const providers = el('datalist', { id: `${p}-faker-providers` }, design.FAKER_PROVIDERS.map((name) => el('option', { value: name })));
      clear(this.root).append(providers,
        el('div', { class: 'schema-toolbar' },
          this.importButton,
          el('span', { class: 'switch' }, this.rawToggle, el('label', { for: `${p}-raw-toggle` }, 'Edit raw JSON'))),
        this.importPanel, this.visual, this.raw, this.message);
    }

    /** The import panel, and the parts of the visual builder only an import shows. */
    buildImport() {
      const p = this.prefix;
      this.importFile = el('input', { type: 'file', id: `${p}-import-file`, accept: '.json,application/json', dataset: { testid: `${p}-import-file` } });
      this.importFile.addEventListener('change', () => this.importFromFile());
      this.importText = el('textarea', {
        id: `${p}-import-text`, class: 'mono', rows: 8, spellcheck: 'false',
        placeholder: '{"type": "object", "properties": {…}, "required": […]}', dataset: { testid: `${p}-import-text` },
      });
      this.importError = el('div', { class: 'form-error', role: 'alert', dataset: { testid: `${p}-import-error` }, hidden: true });
      this.importPanel = el('div', { class: 'schema-import', id: `${p}-import-panel`, dataset: { testid: `${p}-import-panel` }, hidden: true },
        el('div', { class: 'form-field' }, el('label', { for: `${p}-import-file` }, 'From a .json file'), this.importFile),
        el('div', { class: 'form-field' },
          el('label', { for: `${p}-import-text` }, 'Or paste it ',
            el('span', { class: 'hint' }, "e.g. a Pydantic model's model_json_schema()")),
          this.importText),
        el('div', { class: 'form-actions' },
          el('button', { type: 'button', class: 'btn', dataset: { testid: `${p}-import-apply` }, onclick: () => this.importSchema(this.importText.value, 'the pasted text') }, 'Import'),
          el('button', { type: 'button', class: 'btn btn-ghost', onclick: () => this.showImportPanel(false) }, 'Cancel')),
        this.importError);
      this.importSummaryText = el('span', {});
      this.importSummary = el('div', { class: 'import-summary', role: 'status', dataset: { testid: `${p}-import-summary` }, hidden: true },
        this.importSummaryText,
        el('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `${p}-import-clear` }, onclick: () => this.clearImport() },
          'Clear import, back to the builder'));
      this.rootText = el('textarea', { id: `${p}-import-root`, class: 'mono', rows: 10, spellcheck: 'false', dataset: { testid: `${p}-import-root` } });
      this.rootBox = el('div', { class: 'import-root', hidden: true },
        el('label', { for: `${p}-import-root` }, el('span', { class: 'badge badge-raw' }, 'raw JSON'), ' The rest of the schema ',
          el('span', { class: 'hint' }, 'everything outside its fields ($defs, required, title…); "required" follows renamed, removed and added rows')),
        this.rootText);
      this.visual.prepend(this.importSummary);
      this.visual.append(this.rootBox);
    }

    showImportPanel(open) {
      this.importPanel.hidden = !open;
      this.importButton.setAttribute('aria-expanded', String(open));
      this.importError.hidden = true;
      if (open) this.importText.focus();
    }

    async importFromFile() {
      const file = this.importFile.files[0];
      if (!file) return;
      const text = await file.text();
      this.importFile.value = ''; // picking the same file again fires another change
      this.importText.value = text;
      this.importSchema(text, file.name);
    }

    /** Shows `text` as rows and raw JSON, or says in the panel why it cannot. */
    importSchema(text, source) {
      let parts;
      try {
        parts = SDG.schemaImport.splitSchema(text);
      } catch (err) {
        if (!(err instanceof SDG.schemaImport.SchemaImportError)) throw err;
        this.importError.textContent = `Cannot import ${source}: ${err.message}`;
        this.importError.hidden = false;
        return;
      }
      if (!this.imported) this.beforeImport = { fields: this.fields, rawMode: this.rawMode, rawText: this.rawText.value };
      this.imported = { rootKeys: parts.rootKeys, hasRoot: parts.root !== null, names: parts.entries.map((e) => e.name) };
      this.fields = SDG.schemaImport.importedFields(parts.entries).map((f) => ({ ...f, key: this.nextKey++ }));
      this.rootText.value = parts.root ? JSON.stringify(parts.root, null, 2) : '';
      this.showImportPanel(false);
      this.showView(false);
    }

    clearImport() {
      const before = this.beforeImport;
      this.imported = null;
      this.beforeImport = null;
      this.fields = before.fields;
      this.rawText.value = before.rawText;
      this.showView(before.rawMode);
    }

    /** Shows the rows (with the import's parts while there is one) or the raw JSON. */
    showView(raw) {
      this.showMessage('');
      this.rawMode = raw;
      this.rawToggle.checked = raw;
      // An import already shows as raw JSON what the rows cannot hold.
      this.rawToggle.disabled = Boolean(this.imported);
      this.rawToggle.title = this.imported ? 'Clear the import first; what the rows cannot hold is already raw JSON' : '';
      this.visual.hidden = raw;
      this.raw.hidden = !raw;
      this.importSummary.hidden = !this.imported;
      this.rootBox.hidden = !this.imported || !this.imported.hasRoot;
      this.renderRows();
      this.onChange(this.fieldNames());
    }

    addField(overrides) {
      const field = blankField(overrides);
      field.key = this.nextKey++;
      this.fields.push(field);
      this.renderRows();
      this.rows.querySelector(`[data-key="${field.key}"] .field-name`).focus();
      this.onChange(this.fieldNames());
    }

    removeField(key) {
      this.fields = this.fields.filter((f) => f.key !== key);
      this.renderRows();
      this.onChange(this.fieldNames());
    }

    renderRows() {
      clear(this.rows);
      this.refreshers = []; // the rendered rows' updates after an edit elsewhere (names, problems)
      this.fields.forEach((field, index) => this.rows.append(field.raw ? this.renderRawRow(field, index) : this.renderRow(field, index)));
      if (this.imported) {
        const raw = this.fields.filter((f) => f.raw).length;
        this.importSummaryText.textContent = `Imported schema: ${this.fields.length - raw} of its fields in the builder, `
          + `${raw} kept as raw JSON. It is sent exactly as imported, except for what you edit.`;
      }
    }

    /** An imported property no row can hold: its name, and its JSON to edit as text. */
    renderRawRow(field, index) {
      const id = `${this.prefix}-f${field.key}`;
      const name = el('input', {
        id: `${id}-name`, type: 'text', class: 'field-name', autocomplete: 'off', spellcheck: 'false', dataset: { testid: 'raw-field-name' },
      });
      name.value = field.name;
      name.addEventListener('input', () => { field.name = name.value; this.refreshRows(); this.onChange(this.fieldNames()); });
      const json = el('textarea', {
        id: `${id}-json`, class: 'mono', spellcheck: 'false', dataset: { testid: 'raw-field-json' },
        rows: Math.min(12, field.rawText.split('\n').length),
      });
      json.value = field.rawText;
      json.addEventListener('input', () => { field.rawText = json.value; this.setServerError(field, null); });
      return el('div', { class: 'field-row field-row-raw', dataset: { testid: 'schema-raw-field', key: field.key } },
        el('div', { class: 'raw-field-head' },
          el('label', { for: `${id}-name`, class: 'sr-only' }, `Field ${index + 1} name`), name,
          el('span', { class: 'badge badge-raw' }, 'raw JSON'),
          el('span', { class: 'raw-field-why' }, `${field.reason}: edit it as JSON`),
          el('button', {
            type: 'button', class: 'btn btn-icon field-remove', dataset: { testid: 'field-remove' },
            'aria-label': `Remove field ${field.name || index + 1}`, title: 'Remove field',
            onclick: () => this.removeField(field.key),
          }, '×')),
        el('label', { for: `${id}-json`, class: 'sr-only' }, `Field ${index + 1} as JSON Schema`), json, this.serverErrorBox(field));
    }

    renderRow(field, index) {
      const id = `${this.prefix}-f${field.key}`;
      const kind = TYPES[field.type].kind;
      // What the folded options hold: constraints, a description, a sampler or expression, rules.
      const constraintCount = () => [field.minimum, field.maximum, field.pattern, field.maxLength, field.description]
        .filter((v) => String(v).trim() !== '').length + [field.made !== 'model', field.unique, field.orderOp].filter(Boolean).length;
      const toggleText = () => (constraintCount() ? `Options (${constraintCount()})` : 'Options');
      let toggle; // created below; its label counts the options set
      const edited = () => {
        toggle.textContent = toggleText();
        if (field.serverError) this.setServerError(field, null);
        this.refreshRows();
        this.onChange(this.fieldNames());
      };
      const update = (key, rerender) => (event) => {
        field[key] = event.target.type === 'checkbox' ? event.target.checked : event.target.value;
        if (rerender) this.renderRows();
        edited();
      };
      const input = (key, attrs) => {
        const node = el('input', { id: `${id}-${key}`, ...attrs });
        node.value = field[key];
        node.addEventListener('input', update(key, false));
        return node;
      };
      const labelled = (key, label, attrs) => el('div', { class: 'form-field compact' },
        el('label', { for: `${id}-${key}` }, label), input(key, attrs));

      const type = el('select', { id: `${id}-type`, class: 'field-type', dataset: { testid: 'field-type' } },
        Object.keys(TYPES).map((t) => el('option', { value: t }, t)));
      type.value = field.type;
      type.addEventListener('change', update('type', true));

      const made = el('select', {
        id: `${id}-made`, class: 'field-made', title: 'How the value is made: written by the model, sampled, or computed from other fields', dataset: { testid: 'field-made' },
      }, Object.entries(design.MADE).map(([value, label]) => el('option', { value }, label)));
      made.value = field.made;
      made.addEventListener('change', () => {
        field.made = made.value;
        if (field.made === 'sampled' && !field.sampler) field.sampler = design.SAMPLERS_FOR[field.type][0];
        if (field.made !== 'model') field.open = true; // its options are where it is set up
        this.renderRows();
        edited();
      });

      const nullable = el('input', { type: 'checkbox', id: `${id}-nullable`, dataset: { testid: 'field-nullable' } });
      nullable.checked = field.nullable;
      nullable.addEventListener('change', update('nullable', false));

      const optionsId = `${id}-options`;
      toggle = el('button', {
        type: 'button', class: 'btn btn-small btn-ghost', 'aria-expanded': String(field.open),
        'aria-controls': optionsId, dataset: { testid: 'field-options-toggle' },
        onclick: () => { field.open = !field.open; this.renderRows(); },
      }, toggleText());

      const name = input('name', {
        type: 'text', class: 'field-name', placeholder: 'field_name', autocomplete: 'off',
        spellcheck: 'false', dataset: { testid: 'field-name' },
      });
      const main = el('div', { class: 'field-main' },
        el('label', { for: `${id}-name`, class: 'sr-only' }, `Field ${index + 1} name`), name,
        el('label', { for: `${id}-type`, class: 'sr-only' }, `Field ${index + 1} type`), type,
        el('div', { class: 'field-extra' },
          // The spacer keeps "nullable" and "Options" in one column whether or not values show.
          kind === 'enum' ? [
            el('label', { for: `${id}-enumValues`, class: 'sr-only' }, `Field ${index + 1} allowed values`),
            input('enumValues', { type: 'text', placeholder: 'values, comma, separated', dataset: { testid: 'field-enum' } }),
          ] : el('span', { class: 'field-spacer' }),
          el('label', { for: `${id}-made`, class: 'sr-only' }, `Field ${index + 1}: how its value is made`), made,
          el('span', { class: 'checkbox-field' }, nullable, el('label', { for: `${id}-nullable` }, 'nullable')),
          toggle),
        el('button', {
          type: 'button', class: 'btn btn-icon field-remove', dataset: { testid: 'field-remove' },
          'aria-label': `Remove field ${field.name || index + 1}`, title: 'Remove field',
          onclick: () => this.removeField(field.key),
        }, '×'));

      // What the design controls may use of the builder.
      const view = {
        names: () => this.otherNames(field), watch: (refresh) => this.refreshers.push(refresh),
        rerender: () => this.renderRows(), providers: `${this.prefix}-faker-providers`,
      };
      const description = input('description', {
        type: 'text', placeholder: 'guides the model, e.g. "a review of {product}"', dataset: { testid: 'field-description' },
      });
      const options = el('div', { class: 'field-options', id: optionsId, hidden: !field.open },
        designView.controls(view, field, id, edited),
        kind === 'number' && [
          labelled('minimum', 'Minimum', { type: 'number', step: 'any', dataset: { testid: 'field-minimum' } }),
          labelled('maximum', 'Maximum', { type: 'number', step: 'any', dataset: { testid: 'field-maximum' } }),
        ],
        kind === 'text' && [
          labelled('pattern', 'Pattern (regex)', { type: 'text', class: 'mono', placeholder: '[A-Z]{3}-[0-9]{4}', dataset: { testid: 'field-pattern' } }),
          labelled('maxLength', 'Max length', { type: 'number', min: 0, dataset: { testid: 'field-max-length' } }),
        ],
        el('div', { class: 'form-field compact field-description' },
          el('label', { for: `${id}-description` }, 'Description'), description,
          designView.references(view, field, description)),
        kind === 'text' && el('p', { class: 'help' }, 'Use a pattern or a max length, not both: put the length in the pattern.'));

      const kept = Object.entries(field.kept || {});
      const keptNote = kept.length > 0 && el('p', { class: 'field-kept', dataset: { testid: 'field-kept' } },
        'Kept as imported: ', kept.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', '));
      return el('div', { class: 'field-row', dataset: { testid: 'schema-field', key: field.key } },
        main, keptNote, options, this.serverErrorBox(field));
    }

    /** The other fields' names, for the order and locale selects and `{name}` references. */
    otherNames(field) {
      return this.fields.filter((f) => f !== field).map((f) => f.name.trim()).filter(Boolean);
    }

    /** The gateway's error about this row, if there is one. */
    serverErrorBox(field) {
      const box = el('div', { class: 'field-server-error', role: 'alert', dataset: { testid: 'field-server-error' }, hidden: !field.serverError },
        field.serverError ? field.serverError.message : '');
      field.serverErrorNode = box;
      return box;
    }

    setServerError(field, error) {
      field.serverError = error;
      if (!field.serverErrorNode) return;
      field.serverErrorNode.textContent = error ? error.message : '';
      field.serverErrorNode.hidden = !error;
    }

    /** Shows a gateway error by the row of the field it names; false when it names none shown here. */
    showServerError(message) {
      this.clearServerErrors();
      if (this.rawMode) return false;
      const target = design.errorTarget(message, this.fields.map((f) => f.name.trim()));
      const field = target && this.fields.find((f) => f.name.trim() === target.name);
      if (!field) return false;
      field.serverError = { message, key: target.key };
      field.open = true;
      this.renderRows();
      field.serverErrorNode.scrollIntoView({ block: 'nearest' });
      return true;
    }

    clearServerErrors() {
      this.fields.filter((f) => f.serverError).forEach((f) => this.setServerError(f, null));
      this.refreshRows();
    }

    refreshRows() {
      this.refreshers.forEach((refresh) => refresh());
    }

    /** The schema from the rows; throws SchemaInputError for what JSON cannot express. */
    builderSchema() {
      const properties = {};
      const seen = new Set();
      this.fields.forEach((field, i) => {
        const name = field.name.trim();
        if (!name) throw new SchemaInputError(`schema: field ${i + 1} has no name`);
        if (seen.has(name)) throw new SchemaInputError(`schema.${name}: the name is used twice`);
        seen.add(name);
        properties[name] = fieldSchema(field);
      });
      if (!seen.size) throw new SchemaInputError('schema: add at least one field');
      return { type: 'object', properties, required: [...seen] };
    }

    /** Throws SchemaInputError for the first row whose sampler, expression or order is not set up right, and opens that row. */
    checkDesigns() {
      for (const field of this.fields.filter((f) => !f.raw)) {
        const [problem] = design.problems(field, this.otherNames(field));
        if (!problem) continue;
        field.open = true;
        this.renderRows();
        throw new SchemaInputError(`schema.${field.name.trim() || `field ${this.fields.indexOf(field) + 1}`}: ${problem.message}`);
      }
    }

    /** What to send as `schema`: the import put back together, the raw JSON as written, or the rows' schema. */
    schema() {
      if (!this.rawMode) this.checkDesigns();
      if (this.imported) return SDG.schemaImport.composeSchema(this.imported, this.fields, this.rootText.value);
      if (!this.rawMode) return this.builderSchema();
      try {
        return JSON.parse(this.rawText.value);
      } catch (err) {
        throw new SchemaInputError(`schema: not valid JSON (${err.message})`);
      }
    }

    fieldNames() {
      if (!this.rawMode) return this.fields.map((f) => f.name.trim()).filter(Boolean);
      try {
        const parsed = JSON.parse(this.rawText.value);
        const props = parsed && parsed.type === 'object' && parsed.properties ? parsed.properties : parsed;
        return props && typeof props === 'object' ? Object.keys(props) : [];
      } catch (_) {
        return [];
      }
    }

    setRawMode(raw) {
      this.showMessage('');
      if (raw) {
        let schema;
        try {
          schema = this.builderSchema();
        } catch (_) {
          // Half-filled rows still carry over; the gateway will point at what is missing.
          schema = { type: 'object', properties: Object.fromEntries(this.fields.map((f) => [f.name.trim(), fieldSchema(f)])) };
        }
        this.rawText.value = JSON.stringify(schema, null, 2);
      } else {
        let fields;
        try {
          fields = fieldsFromSchema(JSON.parse(this.rawText.value));
        } catch (err) {
          this.showMessage(`Cannot switch back: the JSON does not parse (${err.message}).`);
        }
        if (fields === null) {
          this.showMessage('Cannot switch back: this schema uses features the builder has no controls for (nested objects, arrays, optional fields, other keywords). Keep editing it as JSON.');
        }
        if (!fields) {
          this.rawToggle.checked = true;
          return;
        }
        this.fields = fields.map((f) => ({ ...f, key: this.nextKey++ }));
        this.renderRows();
      }
      this.rawMode = raw;
      this.visual.hidden = raw;
      this.raw.hidden = !raw;
      this.onChange(this.fieldNames());
    }

    showMessage(text) {
      this.message.textContent = text;
      this.message.hidden = !text;
    }
  }

  SDG.SchemaBuilder = SchemaBuilder;
  SDG.SchemaInputError = SchemaInputError;
  SDG.schemaRows = { fieldSchema, fieldFromSchema, fieldsFromSchema, ROW_KEYWORDS };
})(window.SDG = window.SDG || {});
