// The audit panel: the newest administrative changes (policy, node actions, tokens, rules)
// with who made them and from where, from /api/audit every 10 s; its card and polling are
// panel.js's.
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

  window.powerbusPanel("audit-panel", "/api/audit?limit=" + SHOWN, POLL_MS, (box, data) => render(box, data.entries || []));
})();
