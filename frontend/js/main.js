/* Wires the page together: tabs, forms → jobs panel, health polling. */
(function (SDG) {
  'use strict';
  const { byId } = SDG.dom;

  /** WAI-ARIA tabs: click or arrow keys switch panels; only the selected tab is in the tab order. */
  function initTabs() {
    const tabs = [...document.querySelectorAll('[role="tab"]')];
    const activate = (tab) => {
      for (const t of tabs) {
        const on = t === tab;
        t.setAttribute('aria-selected', String(on));
        t.tabIndex = on ? 0 : -1;
        byId(t.getAttribute('aria-controls')).hidden = !on;
      }
    };
    tabs.forEach((tab, i) => {
      tab.addEventListener('click', () => activate(tab));
      tab.addEventListener('keydown', (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(i + step + tabs.length) % tabs.length];
        activate(next);
        next.focus();
      });
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    initTabs();
    SDG.forms.init((jobId) => SDG.jobs.select(jobId));
    SDG.health.start();
    SDG.jobs.start();
  });
})(window.SDG = window.SDG || {});
