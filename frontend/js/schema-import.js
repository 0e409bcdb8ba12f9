/* Importing a real-world JSON Schema (a Pydantic model's model_json_schema(), say) into the
   builder: which top-level properties a builder row holds exactly, which stay raw JSON, and how
   the parts go back together so that an unedited import is sent exactly as it came. Pure
   functions; the builder owns the page. */
(function (SDG) {
  'use strict';

  // Kept as imported on a row that has no control for them (Pydantic titles every property).
  const KEPT_KEYWORDS = ['title', 'default', 'examples', '$comment'];

  class SchemaImportError extends Error {}

  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  /** Equality of two JSON values, key order aside. */
  function deepEqual(a, b) {
    if (a === b) return true;
    if (!a || !b || typeof a !== 'object' || typeof b !== 'object' || Array.isArray(a) !== Array.isArray(b)) return false;
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length
      && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }

  /** Offset at which `text` stops being JSON, or null: Chromium names none for an unexpected token. */
  function jsonErrorOffset(text) {
    let i = 0;
    const stop = {};
    const fail = () => { throw stop; };
    const space = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
    const match = (re) => { re.lastIndex = i; if (!re.test(text)) fail(); i = re.lastIndex; };
    const string = () => match(/"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y);
    const items = (close, item) => {
      i++;
      space();
      if (text[i] === close) { i++; return; }
      for (;;) {
        item();
        space();
        if (text[i] === close) { i++; return; }
        if (text[i] !== ',') fail();
        i++;
      }
    };
    const value = () => {
      space();
      if (text[i] === '{') {
        items('}', () => { space(); string(); space(); if (text[i] !== ':') fail(); i++; value(); });
      } else if (text[i] === '[') items(']', value);
      else if (text[i] === '"') string();
      else match(/true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y);
    };
    try {
      value();
      space();
      if (i < text.length) fail();
      return null;
    } catch (err) {
      if (err !== stop) throw err;
      return i;
    }
  }

  /** The browser's JSON.parse message, with a line and column where it gives none. */
  function jsonErrorMessage(text, err) {
    if (/line \d+ column \d+/.test(err.message)) return err.message;
    const at = /position (\d+)/.exec(err.message);
    const offset = at ? Number(at[1]) : jsonErrorOffset(text);
    if (offset === null) return err.message;
    const lines = text.slice(0, offset).split('\n');
    return `${err.message} (line ${lines.length} column ${lines[lines.length - 1].length + 1})`;
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new SchemaImportError(`not valid JSON: ${jsonErrorMessage(text, err)}`);
    }
  }

  function kind(value) {
    if (Array.isArray(value)) return 'an array';
    return value === null ? 'null' : `a ${typeof value}`;
  }

  /** A builder row that holds `spec` exactly (plus the keywords it keeps), or null. */
  function rowFor(name, spec) {
    const { fieldFromSchema, fieldSchema } = SDG.schemaRows;
    if (!isObject(spec)) {
      const row = fieldFromSchema(name, spec); // SDG shorthand such as "int"
      return row && { row, kept: {} };
    }
    const kept = Object.fromEntries(Object.entries(spec).filter(([k]) => KEPT_KEYWORDS.includes(k)));
    const row = fieldFromSchema(name, Object.fromEntries(Object.entries(spec).filter(([k]) => !KEPT_KEYWORDS.includes(k))));
    // A row that would not give back the same property would change it when edited.
    return row && deepEqual({ ...fieldSchema(row), ...kept }, spec) ? { row, kept } : null;
  }

  /** Why a property stays raw, in a few words. */
  function rawReason(spec) {
    if (!isObject(spec)) return 'not a type the builder knows';
    const combinator = ['$ref', 'anyOf', 'oneOf', 'allOf'].find((k) => k in spec);
    if (combinator) return `uses ${combinator}`;
    const types = [].concat(spec.type);
    if (types.includes('object')) return 'a nested object';
    if (types.includes('array')) return 'a list';
    const other = Object.keys(spec).filter((k) => !SDG.schemaRows.ROW_KEYWORDS.has(k) && !KEPT_KEYWORDS.includes(k));
    return other.length ? `uses ${other.join(', ')}` : 'a combination the row controls cannot hold';
  }

  /**
   * Pasted or loaded text → {rootKeys, root, entries}. `root` is the schema less its properties
   * (null for the SDG mapping form, which has none); each entry is {name, spec, row, kept} for a
   * property a row holds, or {name, spec, reason} for one that stays raw.
   */
  function splitSchema(text) {
    const schema = parseJson(text);
    if (!isObject(schema)) throw new SchemaImportError(`a JSON Schema is a JSON object, this is ${kind(schema)}`);
    const whole = isObject(schema.properties);
    const properties = whole ? schema.properties : schema;
    if (!Object.keys(properties).length) throw new SchemaImportError('the schema has no properties');
    const root = whole ? Object.fromEntries(Object.entries(schema).filter(([k]) => k !== 'properties')) : null;
    const entries = Object.entries(properties).map(([name, spec]) => {
      const fit = rowFor(name, spec);
      return fit ? { name, spec, ...fit } : { name, spec, reason: rawReason(spec) };
    });
    return { rootKeys: Object.keys(schema), root, entries };
  }

  /** The root back around its properties, in the key order it was imported with. */
  function joinSchema(rootKeys, root, properties) {
    if (root === null) return properties;
    const out = {};
    for (const key of rootKeys) {
      if (key === 'properties') out.properties = properties;
      else if (key in root) out[key] = root[key];
    }
    return Object.assign(out, root, { properties });
  }

  // What a row's controls hold, its name aside: a row whose state is as imported sends its import.
  const ROW_STATE_KEYS = ['type', 'nullable', 'enumValues', 'minimum', 'maximum', 'pattern', 'maxLength', 'description',
    'made', 'sampler', 'params', 'expression', 'unique', 'orderOp', 'orderField'];
  const rowState = (field) => JSON.stringify(ROW_STATE_KEYS.map((k) => field[k]));

  /** Builder fields for splitSchema's entries: rows remember their import, raw ones hold JSON text. */
  function importedFields(entries) {
    return entries.map((e) => (e.row
      ? { ...e.row, importedName: e.name, importedSpec: e.spec, importedState: rowState(e.row), kept: e.kept }
      : { name: e.name, importedName: e.name, raw: true, rawText: JSON.stringify(e.spec, null, 2), reason: e.reason }));
  }

  function rowProperty(field) {
    if (field.importedSpec !== undefined && rowState(field) === field.importedState) return field.importedSpec;
    return { ...SDG.schemaRows.fieldSchema(field), ...(field.kept || {}) };
  }

  function parseForSubmit(text, where) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new SDG.SchemaInputError(`${where} is not valid JSON (${jsonErrorMessage(text, err)})`);
    }
  }

  /** `required` after the rows' renames, removals and additions; as imported when there were none. */
  function followRows(required, importedNames, fields, nameOf) {
    const now = new Map(fields.filter((f) => f.importedName !== undefined).map((f) => [f.importedName, nameOf(f)]));
    const kept = required.filter((r) => !importedNames.includes(r) || now.has(r)).map((r) => (now.has(r) ? now.get(r) : r));
    const added = fields.filter((f) => f.importedName === undefined).map(nameOf).filter((n) => n && !kept.includes(n));
    return [...kept, ...added];
  }

  /**
   * The schema to send, from the import ({rootKeys, hasRoot, names}), the builder's fields and the
   * text of the root's raw JSON; throws SchemaInputError naming the part that does not parse.
   */
  function composeSchema(imported, fields, rootText) {
    const nameOf = (f) => (f.name === f.importedName ? f.name : f.name.trim());
    const seen = new Set();
    const pairs = fields.map((field, i) => {
      const name = nameOf(field);
      if (!name) throw new SDG.SchemaInputError(`schema: field ${i + 1} has no name`);
      if (seen.has(name)) throw new SDG.SchemaInputError(`schema.${name}: the name is used twice`);
      seen.add(name);
      return [name, field.raw ? parseForSubmit(field.rawText, `schema.${name}: its raw JSON`) : rowProperty(field)];
    });
    if (!seen.size) throw new SDG.SchemaInputError('schema: add at least one field');
    // fromEntries, not assignment: a property may be named "__proto__".
    const properties = Object.fromEntries(pairs);
    if (!imported.hasRoot) return properties;
    const root = parseForSubmit(rootText, 'schema: the rest of the schema');
    if (!isObject(root)) throw new SDG.SchemaInputError(`schema: the rest of the schema must be a JSON object, not ${kind(root)}`);
    if (Object.hasOwn(root, 'properties')) {
      throw new SDG.SchemaInputError('schema: the rest of the schema has "properties"; edit the fields in their rows');
    }
    if (Array.isArray(root.required)) root.required = followRows(root.required, imported.names, fields, nameOf);
    return joinSchema(imported.rootKeys, root, properties);
  }

  SDG.schemaImport = { SchemaImportError, deepEqual, splitSchema, importedFields, composeSchema };
})(window.SDG = window.SDG || {});
