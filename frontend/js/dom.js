/* Tiny DOM helpers shared by every script: building elements without innerHTML, so that values
   from the API (rows, prompts, error details) are always inserted as text, never as markup. */
(function (SDG) {
  'use strict';

  /** el('div', {class: 'x', dataset: {testid: 'y'}, onclick: fn}, child, 'text', [more]) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'text') node.textContent = value;
      else if (value === true) node.setAttribute(key, '');
      else node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** node.replaceWith(...) with el()'s rules: false, null and undefined children are left out. */
  function replace(node, ...children) {
    const fragment = append(document.createDocumentFragment(), children);
    node.replaceWith(fragment);
  }

  function byId(id) {
    const node = document.getElementById(id);
    if (!node) throw new Error(`missing #${id}`);
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  function formatTime(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
  }

  function formatDuration(startIso, endIso) {
    if (!startIso) return '';
    const start = new Date(startIso).getTime();
    const end = endIso ? new Date(endIso).getTime() : Date.now();
    const s = Math.max(0, (end - start) / 1000);
    return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  SDG.dom = { el, append, replace, byId, clear, formatTime, formatDuration };
})(window.SDG = window.SDG || {});
