// The audit panel: the newest administrative changes (policy, node actions, tokens, rules)
// with who made them and from where, from /api/audit every 10 s. Self-contained like the
// events panel: its own container after the page, its own polling.
(function () {
  "use strict";
  const POLL_MS = 10000;
  const SHOWN = 15;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function label(zh, en) { return '<span class="zh">' + zh + '</span><span class="en">' + en + "</span>"; }
  function flat(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return v;
    if (typeof v === "object" && !Array.isArray(v)) {
      return Object.keys(v).map((k) => k + "=" + (typeof v[k] === "string" ? v[k] : JSON.stringify(v[k]))).join(", ");
    }
    return JSON.stringify(v);
  }
  function when(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 19) + "Z";
  }

  function render(box, entries) {
    if (!entries.length) { box.hidden = true; return; }
    box.hidden = false;
    const rows = entries.slice(0, SHOWN).map((e) =>
      "<tr><td>" + esc(when(e.at)) + "</td><td>" + esc(e.identity) + '<br><span class="muted">' + esc(e.peer) +
      "</span></td><td>" + esc(e.action) + "</td><td>" + esc(e.target) + '</td><td class="change">' +
      (e.before !== null ? '<div class="muted">− ' + esc(flat(e.before)) + "</div>" : "") +
      (e.after !== null ? "<div>+ " + esc(flat(e.after)) + "</div>" : "") + "</td></tr>").join("");
    box.innerHTML = "<h2>" + label("审计记录", "Audit") + '<span class="hint">' +
      label("最近的管理操作", "latest administrative changes") + '</span></h2><div class="body">' +
      '<table class="data"><thead><tr><th>' + label("时间", "at") + "</th><th>" + label("操作者", "who") +
      "</th><th>" + label("操作", "action") + "</th><th>" + label("对象", "target") + "</th><th>" +
      label("变更", "change") + "</th></tr></thead><tbody>" + rows + "</tbody></table></div>";
  }

  async function poll(box) {
    try {
      const r = await fetch("/api/audit?limit=" + SHOWN, { cache: "no-store" });
      if (r.ok) render(box, (await r.json()).entries || []);
    } catch (_e) {
      // The bus is restarting: the next round tries again.
    }
  }

  function start() {
    const box = document.createElement("section");
    box.id = "audit-panel";
    box.className = "card audit-panel";
    box.style.margin = "0 24px 24px";
    box.hidden = true;
    const after = document.getElementById("events-panel") || document.getElementById("page");
    (after && after.parentNode ? after.parentNode : document.body).insertBefore(box, after ? after.nextSibling : null);
    poll(box);
    setInterval(() => poll(box), POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
