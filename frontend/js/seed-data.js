/* The text form's seed data: a file chosen is uploaded at once (POST /datasets), its columns are
   offered as checkboxes, and the job's body gets `seed_data` naming the dataset, the checked
   columns and the mode. The gateway checks the columns against the schema. */
(function (SDG) {
  'use strict';
  const { byId, el, clear } = SDG.dom;

  let dataset = null;  // the uploaded dataset's description, as POST /datasets answered

  function showMode() {
    const fewShot = byId('text-seed-mode').value === 'few_shot';
    byId('text-seed-once-field').hidden = fewShot;
    byId('text-seed-k-field').hidden = !fewShot;
  }

  function show(uploaded) {
    dataset = uploaded;
    const box = byId('text-seed-columns');
    clear(box);
    byId('text-seed-columns-box').hidden = !dataset;
    byId('text-seed-clear').hidden = !dataset;
    if (!dataset) return;
    byId('text-seed-info').textContent = `${dataset.name}: ${dataset.rows} rows (${dataset.dataset_id})`;
    dataset.columns.forEach((name, i) => box.append(el('span', { class: 'checkbox-field' },
      el('input', { id: `text-seed-column-${i}`, type: 'checkbox', value: name, dataset: { testid: 'text-seed-column' } }),
      el('label', { for: `text-seed-column-${i}` }, name))));
  }

  async function uploadChosen() {
    const file = byId('text-seed-file').files[0];
    show(null);
    if (!file) return;
    const info = byId('text-seed-info');
    info.textContent = `uploading ${file.name}…`;
    const form = new FormData();
    form.append('file', file);
    try {
      show(await SDG.api.upload('/datasets', form));
    } catch (err) {
      info.textContent = `${err.status ? `${err.status}: ` : ''}${err.message}`;
    }
  }

  /** The job's `seed_data`, or undefined without an uploaded dataset. */
  function body() {
    if (!dataset) return undefined;
    const mode = byId('text-seed-mode').value;
    const columns = [...document.querySelectorAll('#text-seed-columns input:checked')].map((box) => box.value);
    const k = byId('text-seed-k').value.trim();
    return {
      dataset_id: dataset.dataset_id,
      columns,
      mode,
      replace: mode === 'carry' && byId('text-seed-once').checked ? false : undefined,
      k: mode === 'few_shot' && k !== '' ? Number(k) : undefined,
    };
  }

  function init() {
    byId('text-seed-file').addEventListener('change', uploadChosen);
    byId('text-seed-mode').addEventListener('change', showMode);
    byId('text-seed-clear').addEventListener('click', () => {
      byId('text-seed-file').value = '';
      byId('text-seed-info').textContent = '';
      show(null);
    });
    showMode();
  }

  SDG.seedData = { init, body };
})(window.SDG = window.SDG || {});
