/* How a builder row's value is made, as its `x-sdg` object: written by the model, sampled
   (category, uniform, gaussian, ... with their options) or computed from an expression, plus
   `unique` and an order against another field. Pure functions on a row's state; the builder
   owns the page. The checks here are those a user would otherwise only learn from a 400. */
(function (SDG) {
  'use strict';

  // Option parsers: `values` follow the field's type, `numbers` are a comma list of numbers,
  // `field` names another field, `map` is "NL=nl_NL, DE=de_DE".
  const SAMPLERS = {
    category: [
      { key: 'values', label: 'Values', parse: 'values', required: true, placeholder: 'free, pro, enterprise' },
      { key: 'weights', label: 'Weights', parse: 'numbers', placeholder: '0.6, 0.3, 0.1 (optional)' },
    ],
    uniform: [
      { key: 'min', label: 'Min', parse: 'number', placeholder: "the field's minimum" },
      { key: 'max', label: 'Max', parse: 'number', placeholder: "the field's maximum" },
    ],
    gaussian: [
      { key: 'mean', label: 'Mean', parse: 'number', required: true, placeholder: '40' },
      { key: 'stddev', label: 'Std. deviation', parse: 'number', required: true, placeholder: '12' },
    ],
    poisson: [{ key: 'mean', label: 'Mean', parse: 'number', required: true, placeholder: '3' }],
    datetime: [
      { key: 'start', label: 'From', parse: 'text', required: true, placeholder: '2020-01-01' },
      { key: 'end', label: 'To', parse: 'text', required: true, placeholder: '2024-12-31' },
    ],
    sequence: [
      { key: 'start', label: 'Start', parse: 'number', placeholder: '1' },
      { key: 'step', label: 'Step', parse: 'number', placeholder: '1' },
    ],
    uuid: [],
    faker: [
      { key: 'provider', label: 'Faker provider', parse: 'text', required: true, placeholder: 'name' },
      { key: 'locale', label: 'Locale', parse: 'text', placeholder: 'en_US (optional)' },
      { key: 'locale_from', label: 'Locale from field', parse: 'field' },
      { key: 'locales', label: 'Value → locale', parse: 'map', placeholder: 'NL=nl_NL, DE=de_DE' },
    ],
  };
  // The samplers each builder type offers (those the gateway takes for it), the first being the
  // one picked on switching to "sampled".
  const SAMPLERS_FOR = {
    string: ['faker', 'category', 'uuid'],
    int: ['gaussian', 'uniform', 'poisson', 'sequence', 'category'],
    float: ['gaussian', 'uniform', 'poisson', 'sequence', 'category'],
    bool: ['category'],
    date: ['datetime', 'category', 'faker'],
    datetime: ['datetime', 'category', 'faker'],
    email: ['faker', 'category'],
    uuid: ['uuid', 'faker', 'category'],
    enum: ['category', 'faker'],
  };
  const FAKER_PROVIDERS = ['name', 'first_name', 'last_name', 'address', 'street_address', 'city', 'country',
    'postcode', 'company', 'job', 'phone_number', 'email', 'user_name', 'url', 'iban', 'license_plate'];
  const ORDERS = {
    greater_than: 'greater than', greater_or_equal: 'at least', less_than: 'less than', less_or_equal: 'at most',
  };
  const MADE = { model: 'model', sampled: 'sampled', computed: 'computed' }; // short: they share the row's line

  const blankDesign = () => ({ made: 'model', sampler: '', params: {}, expression: '', unique: false, orderOp: '', orderField: '' });

  const splitList = (text) => text.split(',').map((v) => v.trim()).filter((v) => v !== '');

  function numberOrText(text) {
    const n = Number(text);
    // Sent as typed when it is not a number, so the gateway's message names the bad value.
    return text.trim() !== '' && Number.isFinite(n) ? n : text.trim();
  }

  function typedValue(text, type) {
    if (type === 'int' || type === 'float') return numberOrText(text);
    if (type === 'bool') return { true: true, false: false }[text] ?? text;
    return text;
  }

  function parseMap(text) {
    return Object.fromEntries(splitList(text).map((pair) => pair.split('=').map((part) => part.trim())));
  }

  function optionValue(option, text, type) {
    switch (option.parse) {
      case 'values': return splitList(text).map((v) => typedValue(v, type));
      case 'numbers': return splitList(text).map(numberOrText);
      case 'number': return numberOrText(text);
      case 'map': return parseMap(text);
      default: return text.trim();
    }
  }

  /** A row's `x-sdg` object, or undefined when the model writes it with no constraint. */
  function xsdg(field) {
    const out = {};
    if (field.made === 'sampled' && SAMPLERS[field.sampler]) {
      const options = {};
      for (const option of SAMPLERS[field.sampler]) {
        const text = field.params[option.key] || '';
        if (text.trim() !== '') options[option.key] = optionValue(option, text, field.type);
      }
      out[field.sampler] = options;
    }
    if (field.made === 'computed') out.expression = field.expression.trim();
    if (field.unique) out.unique = true;
    if (field.orderOp) out[field.orderOp] = field.orderField;
    return Object.keys(out).length ? out : undefined;
  }

  const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

  /** Problems with a row's design as [{key, message}]; `names` are the other fields' names. */
  function problems(field, names) {
    const found = [];
    const say = (key, message) => found.push({ key, message });
    if (field.made === 'computed' && field.expression.trim() === '') say('expression', 'write the expression that computes it');
    if (field.orderOp) {
      if (!field.orderField) say('orderField', `pick the field it is ${ORDERS[field.orderOp]}`);
      else if (!names.includes(field.orderField)) say('orderField', `${field.orderField} is not another field of this schema`);
    }
    if (field.made !== 'sampled') return found;
    const options = SAMPLERS[field.sampler];
    if (!options) return [...found, { key: 'sampler', message: 'pick a sampler' }];
    if (!SAMPLERS_FOR[field.type].includes(field.sampler)) {
      say('sampler', `${field.sampler} does not sample ${field.type} fields; pick one of ${SAMPLERS_FOR[field.type].join(', ')}`);
    }
    const value = {};
    for (const option of options) {
      const text = (field.params[option.key] || '').trim();
      if (text === '') {
        if (option.required) say(option.key, `${field.sampler} needs ${option.label.toLowerCase()}`);
        continue;
      }
      value[option.key] = optionValue(option, text, field.type);
      if (option.parse === 'number' && !isNumber(value[option.key])) say(option.key, `${option.label.toLowerCase()} must be a number, not "${text}"`);
      if (option.parse === 'numbers' && !value[option.key].every(isNumber)) say(option.key, `${option.label.toLowerCase()} must be numbers separated by commas`);
      if (option.parse === 'map' && !splitList(text).every((pair) => /^[^=]+=[^=]+$/.test(pair))) say(option.key, 'write value=locale pairs separated by commas');
      if (option.parse === 'field' && !names.includes(value[option.key])) say(option.key, `${value[option.key]} is not another field of this schema`);
    }
    const { values, weights, min, max, mean, stddev, start, end, step } = value;
    if (field.sampler === 'category') {
      if (values && !values.length) say('values', 'give at least one value');
      if (values && weights && weights.length !== values.length) {
        say('weights', `${weights.length} weight${weights.length === 1 ? '' : 's'} for ${values.length} value${values.length === 1 ? '' : 's'}: give one per value`);
      } else if (weights && weights.every(isNumber)) {
        if (weights.some((w) => w < 0)) say('weights', 'weights must not be negative');
        else if (!(weights.reduce((a, b) => a + b, 0) > 0)) say('weights', 'weights must sum to more than 0');
      }
    }
    if (field.sampler === 'uniform' && isNumber(min) && isNumber(max) && min > max) say('max', `max ${max} is below min ${min}`);
    if (field.sampler === 'gaussian' && isNumber(stddev) && !(stddev > 0)) say('stddev', 'std. deviation must be above 0');
    if (field.sampler === 'poisson' && isNumber(mean) && !(mean > 0)) say('mean', 'mean must be above 0');
    if (field.sampler === 'sequence') {
      for (const key of ['start', 'step']) if (isNumber(value[key]) && !Number.isInteger(value[key])) say(key, `${key} must be a whole number`);
      if (step === 0) say('step', 'step must not be 0: the values would repeat');
    }
    if (field.sampler === 'datetime') {
      const times = [['start', start], ['end', end]].map(([key, text]) => {
        const time = text === undefined ? NaN : Date.parse(text);
        if (text !== undefined && Number.isNaN(time)) say(key, `"${text}" is not a date such as 2020-01-01`);
        return time;
      });
      if (times[0] > times[1]) say('end', `${end} is before ${start}`);
    }
    if (field.sampler === 'faker') {
      if (value.locale && value.locale_from) say('locale_from', 'give a locale or a locale field, not both');
      if (value.locales && !value.locale_from) say('locales', 'a value → locale map needs a locale field');
    }
    return found;
  }

  /** One option as a row holds it (text), or null when the text would not give it back. */
  function optionText(option, value) {
    const plain = (v) => (typeof v === 'string' ? v.trim() === v && v !== '' && !v.includes(',') : isNumber(v) || typeof v === 'boolean');
    switch (option.parse) {
      case 'values': return Array.isArray(value) && value.every(plain) ? value.join(', ') : null;
      case 'numbers': return Array.isArray(value) && value.every(isNumber) ? value.join(', ') : null;
      case 'number': return isNumber(value) ? String(value) : null;
      case 'map': {
        if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
        const pairs = Object.entries(value);
        return pairs.every(([k, v]) => plain(k) && plain(v) && !`${k}${v}`.includes('=')) ? pairs.map(([k, v]) => `${k}=${v}`).join(', ') : null;
      }
      default: return typeof value === 'string' ? value : null;
    }
  }

  /** An `x-sdg` object → a row's design state, or null when the row controls cannot hold it. */
  function designFromXsdg(value) {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
    const design = blankDesign();
    for (const [key, item] of Object.entries(value)) {
      if (SAMPLERS[key] && design.made === 'model') {
        if (!item || typeof item !== 'object' || Array.isArray(item)) return null;
        design.made = 'sampled';
        design.sampler = key;
        for (const [name, option] of Object.entries(item)) {
          const spec = SAMPLERS[key].find((o) => o.key === name);
          const text = spec && optionText(spec, option);
          if (text === null || text === undefined) return null;
          design.params[name] = text;
        }
      } else if (key === 'expression' && design.made === 'model' && typeof item === 'string') {
        design.made = 'computed';
        design.expression = item;
      } else if (key === 'unique' && item === true) {
        design.unique = true;
      } else if (ORDERS[key] && !design.orderOp && typeof item === 'string') {
        design.orderOp = key;
        design.orderField = item;
      } else {
        return null;
      }
    }
    return design;
  }

  /** The `{name}` references in a description, each once, in order; `{{` and `}}` are literal braces. */
  function references(description) {
    return [...new Set([...description.matchAll(/\{\{|\}\}|\{([^{}]*)\}/g)].map((m) => m[1]).filter((n) => n !== undefined))];
  }

  /**
   * Where a gateway error points: {name, key} for `#/properties/NAME/...` (key: the last part
   * under x-sdg) or a leading `schema.NAME:` of one of `names`; null when it names no field.
   */
  function errorTarget(message, names) {
    const unescape = (part) => part.replace(/~1/g, '/').replace(/~0/g, '~');
    const pointer = /#\/properties\/([^/)\s]+)((?:\/[^/)\s]+)*)/.exec(message);
    if (pointer) {
      const name = unescape(pointer[1]);
      const rest = pointer[2].split('/').filter(Boolean).map(unescape);
      const under = rest[0] === 'x-sdg' ? rest.slice(1) : [];
      if (names.includes(name)) return { name, key: under.length ? under[under.length - 1] : (rest[0] === 'x-sdg' ? 'x-sdg' : '') };
    }
    const named = names.filter((n) => [':', '.', '['].some((end) => message.startsWith(`schema.${n}${end}`)));
    if (!named.length) return null;
    return { name: named.sort((a, b) => b.length - a.length)[0], key: '' };
  }

  SDG.fieldDesign = { SAMPLERS, SAMPLERS_FOR, FAKER_PROVIDERS, ORDERS, MADE, blankDesign, xsdg, problems, designFromXsdg, references, errorTarget };
})(window.SDG = window.SDG || {});
