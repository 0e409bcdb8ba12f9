/* The related-tables view: several named schemas, each built with a SchemaBuilder, where a child
   table names its parent's key and how many rows each parent gets. Reads into the body of
   POST /generate/tables: `tables` by name, the child's key field as
   `x-sdg: {"foreign_key": "customers.id"}`, and `per_parent` (a count, or a poisson mean). */
(function (SDG) {
  'use strict';
  const { el, clear } = SDG.dom;

  const EXAMPLE = [
    {
      name: 'customers', rows: '20',
      fields: [
        { name: 'id', type: 'int', made: 'sampled', sampler: 'sequence', params: { start: '1' } },
        { name: 'name', type: 'string', made: 'sampled', sampler: 'faker', params: { provider: 'name' } },
      ],
    },
    {
      name: 'orders', parent: 'customers.id', keyField: 'customer_id', perParentKind: 'poisson', perParent: '3',
      fields: [
        { name: 'id', type: 'int', made: 'sampled', sampler: 'sequence', params: { start: '1' } },
        { name: 'total', type: 'float', minimum: '1', maximum: '500' },
      ],
    },
  ];

  class TablesView {
    constructor(root) {
      this.root = root;
      this.tables = [];
      this.nextKey = 0;
      this.list = el('div', { class: 'tables-list', dataset: { testid: 'tables-list' } });
      clear(root).append(this.list, el('button', {
        type: 'button', class: 'btn btn-ghost', dataset: { testid: 'tables-add' }, onclick: () => this.addTable({}),
      }, '+ Add table'));
      EXAMPLE.forEach((table) => this.addTable(table));
    }

    addTable({ name = '', rows = '10', parent = '', keyField = '', perParentKind = 'fixed', perParent = '1', fields = [] }) {
      const key = this.nextKey++;
      const p = `tables-t${key}`;
      const table = { key, name, rows, parent, keyField, perParentKind, perParent };
      const input = (prop, attrs) => {
        const node = el('input', { id: `${p}-${prop}`, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
        node.value = table[prop];
        node.addEventListener('input', () => { table[prop] = node.value; this.refresh(); });
        return node;
      };
      const field = (label, node, extra) => el('div', { class: 'form-field compact' }, el('label', { for: node.id }, label, extra), node);
      table.parentSelect = el('select', { id: `${p}-parent`, dataset: { testid: 'table-parent' } });
      table.parentSelect.addEventListener('change', () => { table.parent = table.parentSelect.value; this.refresh(); });
      const kind = el('select', { id: `${p}-per-kind`, dataset: { testid: 'table-per-parent-kind' } },
        el('option', { value: 'fixed' }, 'exactly'), el('option', { value: 'poisson' }, 'poisson, mean'));
      kind.value = perParentKind;
      const countLabel = el('span', {}, perParentKind === 'poisson' ? 'Mean' : 'Count');
      kind.addEventListener('change', () => {
        table.perParentKind = kind.value;
        countLabel.textContent = kind.value === 'poisson' ? 'Mean' : 'Count';
      });
      table.rowsField = field('Rows', input('rows', { inputmode: 'numeric', dataset: { testid: 'table-rows' } }));
      table.childFields = el('div', { class: 'table-child' },
        field('Key field', input('keyField', { class: 'mono', placeholder: 'customer_id', dataset: { testid: 'table-key-field' } })),
        field('Rows per parent', kind),
        field(countLabel, input('perParent', { inputmode: 'decimal', dataset: { testid: 'table-per-parent' } })));
      const schemaRoot = el('div', { class: 'schema-editor' });
      table.node = el('fieldset', { class: 'table-card', dataset: { testid: 'table' } },
        el('legend', {}, 'Table'),
        el('div', { class: 'table-head' },
          field('Name', input('name', { class: 'mono', placeholder: 'customers', dataset: { testid: 'table-name' } })),
          field('Parent', table.parentSelect, el('span', { class: 'optional' }, ' its key')),
          table.rowsField,
          el('button', {
            type: 'button', class: 'btn btn-icon', 'aria-label': 'Remove table', title: 'Remove table',
            dataset: { testid: 'table-remove' }, onclick: () => this.removeTable(table),
          }, '×')),
        table.childFields, schemaRoot);
      this.list.append(table.node);
      const initial = fields.map((f) => ({ ...f, params: { ...f.params } })); // rows edit their params in place
      table.builder = new SDG.SchemaBuilder(schemaRoot, { idPrefix: p, initial, onChange: () => this.refresh() });
      this.tables.push(table);
      this.refresh();
    }

    removeTable(table) {
      this.tables = this.tables.filter((t) => t !== table);
      table.node.remove();
      this.refresh();
    }

    /** Parent choices follow every table's name and fields; a child has no row count of its own. */
    refresh() {
      for (const table of this.tables) {
        const choices = this.tables.filter((t) => t !== table && t.name.trim())
          .flatMap((t) => t.builder.fieldNames().map((f) => `${t.name.trim()}.${f}`));
        const options = [...new Set([...choices, ...(table.parent ? [table.parent] : [])])];
        clear(table.parentSelect).append(el('option', { value: '' }, '(none: a top table)'), ...options.map((o) => el('option', { value: o }, o)));
        table.parentSelect.value = table.parent;
        table.rowsField.hidden = Boolean(table.parent);
        table.childFields.hidden = !table.parent;
      }
    }

    /** The key field a child adds: the parent key's type and format, and the foreign_key. */
    keyProperty(table) {
      const [parentName, ...rest] = table.parent.split('.');
      const parentField = rest.join('.');
      const parent = this.tables.find((t) => t.name.trim() === parentName);
      const field = parent && parent.builder.fields.find((f) => f.name.trim() === parentField);
      const spec = field ? SDG.schemaRows.fieldSchema(field) : { type: 'integer' };
      const type = [].concat(spec.type).filter((t) => t !== 'null')[0];
      return { type, ...(spec.format ? { format: spec.format } : {}), 'x-sdg': { foreign_key: table.parent } };
    }

    /** The `tables` object of the request; throws SchemaInputError naming the table. */
    body() {
      const tables = {};
      if (!this.tables.length) throw new SDG.SchemaInputError('tables: add at least one table');
      this.tables.forEach((table, i) => {
        const name = table.name.trim();
        if (!name) throw new SDG.SchemaInputError(`tables: table ${i + 1} has no name`);
        if (Object.hasOwn(tables, name)) throw new SDG.SchemaInputError(`tables.${name}: the name is used twice`);
        let schema;
        try {
          schema = table.builder.schema();
        } catch (err) {
          if (err instanceof SDG.SchemaInputError) throw new SDG.SchemaInputError(`tables.${name}.${err.message}`);
          throw err;
        }
        const out = { schema };
        if (table.parent) {
          const keyField = table.keyField.trim();
          if (!keyField) throw new SDG.SchemaInputError(`tables.${name}: name the field that holds its ${table.parent}`);
          const props = schema.type === 'object' && schema.properties ? schema.properties : schema;
          if (Object.hasOwn(props, keyField)) throw new SDG.SchemaInputError(`tables.${name}.schema.${keyField}: the key field is also a field of the table`);
          const withKey = { [keyField]: this.keyProperty(table), ...props };
          out.schema = props === schema ? withKey : { ...schema, properties: withKey, required: [keyField, ...(schema.required || [])] };
          const count = Number(table.perParent);
          out.per_parent = table.perParentKind === 'poisson' ? { poisson: { mean: Number.isFinite(count) ? count : table.perParent } }
            : Number.isFinite(count) && table.perParent.trim() !== '' ? count : table.perParent;
        } else {
          const rows = Number(table.rows);
          out.num_samples = Number.isFinite(rows) && table.rows.trim() !== '' ? rows : table.rows;
        }
        tables[name] = out;
      });
      return tables;
    }

    clearServerErrors() {
      this.tables.forEach((t) => t.builder.clearServerErrors());
    }

    /** A 400 naming `tables.NAME...` is shown by that table's rows too, where they hold it. */
    showServerError(message) {
      this.clearServerErrors();
      const table = this.tables.find((t) => t.name.trim() && message.startsWith(`tables.${t.name.trim()}.`));
      return Boolean(table) && table.builder.showServerError(message.slice(`tables.${table.name.trim()}.`.length));
    }
  }

  SDG.TablesView = TablesView;
})(window.SDG = window.SDG || {});
