/* Wires the page together: tabs, forms → jobs panel → header and form notes, health polling. */
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
    // The header's count and the forms' "Queued …" notes follow the jobs poll, which runs every
    // second while a job moves; the health poll alone would leave them up to 10 s behind.
    SDG.jobs.start((states) => {
      SDG.health.showJobsRunning([...states.values()].filter((state) => !SDG.jobView.FINISHED.has(state)).length);
      SDG.forms.settleNotes(states);
    });
  });
})(window.SDG = window.SDG || {});
