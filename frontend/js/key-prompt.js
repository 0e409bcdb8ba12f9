/* The API key, when the gateway asks for one (401): a dialog asks for it once, it is kept in
   sessionStorage for this tab, and SDG.api sends it with every call. */
(function (SDG) {
  'use strict';
  const STORAGE = 'sdg-api-key';
  let pending = null;

  function current() {
    return window.sessionStorage.getItem(STORAGE) || '';
  }

  /** Resolves with a key once the user has entered one; calls while the dialog is open share it.
      `refused` is the key the gateway just turned down, which is dropped. */
  function ask(refused) {
    if (refused && current() === refused) window.sessionStorage.removeItem(STORAGE);
    if (current() && current() !== refused) return Promise.resolve(current());
    if (pending) return pending;
    const dialog = SDG.dom.byId('key-dialog');
    const input = SDG.dom.byId('key-input');
    SDG.dom.byId('key-message').textContent = refused
      ? 'The gateway did not accept that key. Enter another.'
      : 'This gateway needs an API key.';
    pending = new Promise((resolve) => {
      dialog.onsubmit = (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        window.sessionStorage.setItem(STORAGE, key);
        input.value = '';
        dialog.close();
        pending = null;
        resolve(key);
      };
    });
    // Escape would leave every call waiting on a dialog that is gone.
    dialog.oncancel = (event) => event.preventDefault();
    dialog.showModal();
    input.focus();
    return pending;
  }

  SDG.keyPrompt = { current, ask };
})(window.SDG = window.SDG || {});
