// A card of its own below the page, filled from one /api URL on a timer: what the events,
// audit and quality panels share, so each of them holds only how it renders. Panels come in
// the order their scripts load, each after the last; the rest of the dashboard never
// needs to know of them.
(function () {
  "use strict";
  let last = null;

  window.powerbusPanel = function (id, url, everyMs, render) {
    async function poll(box) {
      try {
        const r = await fetch(url, { cache: "no-store" });
        if (r.ok) render(box, await r.json());
      } catch (_e) {
        // The bus is restarting: the next round tries again.
      }
    }

    function start() {
      const box = document.createElement("section");
      box.id = id;
      box.className = "card " + id;
      box.style.margin = "0 24px 24px";
      box.hidden = true;
      const after = last || document.getElementById("page");
      (after && after.parentNode ? after.parentNode : document.body).insertBefore(box, after ? after.nextSibling : null);
      last = box;
      poll(box);
      setInterval(() => poll(box), everyMs);
    }

    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  };
})();
