// The events panel: publishers, subscribers, their rates and each subscriber's lag (with
// its active lag alert), from /api/events every 3 s; its card and polling are panel.js's.
(function () {
  "use strict";
  const POLL_MS = 3000;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function num(v) { return (v || 0).toLocaleString("en-US"); }
  function rate(v) { return (v || 0).toFixed(1) + "/s"; }
  function label(zh, en) { return '<span class="zh">' + zh + '</span><span class="en">' + en + "</span>"; }

  function publishers(list) {
    if (!list.length) return '<p class="muted">' + label("暂无发布者", "no publishers yet") + "</p>";
    const rows = list.map((p) =>
      "<tr><td>" + esc(p.source) + "</td><td>" + esc(p.last_topic) + '</td><td class="num">' +
      rate(p.rate_per_s) + '</td><td class="num">' + num(p.events) + '</td><td class="num">' +
      num(p.last_sequence) + "</td></tr>").join("");
    return '<table class="data"><thead><tr><th>' + label("来源", "source") + "</th><th>" +
      label("最新主题", "latest topic") + "</th><th>" + label("速率", "rate") + "</th><th>" +
      label("事件数", "events") + "</th><th>" + label("序号", "sequence") + "</th></tr></thead><tbody>" +
      rows + "</tbody></table>";
  }

  function subscribers(list) {
    if (!list.length) return '<p class="muted">' + label("暂无订阅者上报位置", "no subscriber has reported its position") + "</p>";
    const rows = list.map((s) => {
      const behind = (s.sources || []).filter((x) => x.lag > 0)
        .map((x) => esc(x.source) + " " + num(x.lag)).join(", ");
      return "<tr><td>" + esc(s.subscriber) + "</td><td>" + esc((s.prefixes || []).map((p) => p || "*").join(", ")) +
        '</td><td class="num">' + rate(s.rate_per_s) + '</td><td class="num' + (s.lag > 0 ? " err-mid" : "") + '">' +
        num(s.lag) + "</td><td>" + (behind || "—") +
        (s.alert ? ' <span class="lag-alert" style="color: var(--bad); font-weight: 600" title="' + esc(s.alert) + '">⚠ ' + label("滞后告警", "lag alert") + "</span>" : "") +
        "</td></tr>";
    }).join("");
    return '<table class="data"><thead><tr><th>' + label("订阅者", "subscriber") + "</th><th>" +
      label("主题前缀", "prefixes") + "</th><th>" + label("速率", "rate") + "</th><th>" +
      label("滞后", "lag") + "</th><th>" + label("滞后来源", "behind on") + "</th></tr></thead><tbody>" +
      rows + "</tbody></table>";
  }

  function render(box, data) {
    if (!data.running) { box.hidden = true; return; }
    box.hidden = false;
    box.innerHTML = "<h2>" + label("事件", "Events") + '<span class="hint">' + rate(data.rate_per_s) + " · " +
      label("已存储", "stored") + " " + num(data.stored) + '</span></h2><div class="body">' +
      "<h3>" + label("发布者", "Publishers") + "</h3>" + publishers(data.publishers || []) +
      "<h3>" + label("订阅者", "Subscribers") + "</h3>" + subscribers(data.subscribers || []) + "</div>";
  }

  window.powerbusPanel("events-panel", "/api/events", POLL_MS, render);
})();
