// The meter data quality panel: per gateway (serial line), readings expected vs received,
// the estimated share, failed reads by kind and the last good read over the quality
// rule's window, with its active alert; from /api/metering/quality every 5 s. Hidden while
// no metering node has reported a poll. Its card and polling are panel.js's.
(function () {
  "use strict";
  const POLL_MS = 5000;
  const KINDS = [
    ["timeout", "超时", "timeout"],
    ["exception", "异常码", "exception"],
    ["checksum", "校验错", "checksum"],
    ["garbage", "乱码", "garbage"],
    ["truncated", "帧不全", "truncated"],
    ["unreachable", "网关不通", "unreachable"],
  ];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function num(v) { return (v || 0).toLocaleString("en-US"); }
  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function label(zh, en) { return '<span class="zh">' + zh + '</span><span class="en">' + en + "</span>"; }
  function span(seconds) {
    if (seconds >= 3600 && seconds % 3600 === 0) return seconds / 3600 + " h";
    if (seconds >= 60 && seconds % 60 === 0) return seconds / 60 + " min";
    return seconds + " s";
  }
  function ago(iso) {
    if (!iso) return label("从未", "never");
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    const text = s < 90 ? s + " s" : s < 5400 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
    return '<span title="' + esc(iso) + '">' + label(text + "前", text + " ago") + "</span>";
  }

  function failures(f) {
    const parts = KINDS.filter((k) => f[k[0]]).map((k) => label(k[1], k[2]) + " " + num(f[k[0]]));
    return parts.length ? parts.join(" · ") : "—";
  }

  function status(g) {
    if (g.alert) {
      return '<span class="quality-alert" style="color: var(--bad); font-weight: 600" title="' + esc(g.alert) +
        '">⚠ ' + label("质量告警", "quality alert") + "</span>";
    }
    if (g.status === "low") return '<span style="color: var(--bad)">' + label("偏低", "low") + "</span>";
    if (g.status === "idle") return '<span class="muted">' + label("无应采", "nothing due") + "</span>";
    return '<span style="color: var(--ok)">' + label("正常", "ok") + "</span>";
  }

  function table(rows, threshold) {
    const body = rows.map((g) =>
      '<tr data-gateway="' + esc(g.gateway) + '" data-status="' + esc(g.status) + '"><td class="name">' + esc(g.gateway) +
      "</td><td>" + esc(g.node) + '</td><td class="num">' + num(g.received) + " / " + num(g.expected) +
      '</td><td class="num' + (g.status === "low" ? " err-mid" : "") + '">' + pct(g.received_share) +
      '</td><td class="num">' + pct(g.estimated_share) + "</td><td>" + failures(g.failures || {}) +
      "</td><td>" + ago(g.last_good_read) + "</td><td>" + status(g) + "</td></tr>").join("");
    return '<table class="data"><thead><tr><th>' + label("网关", "gateway") + "</th><th>" +
      label("采集节点", "polled by") + '</th><th class="num">' + label("实采 / 应采", "received / expected") +
      '</th><th class="num">' + label("采集成功率", "received") + " (≥ " + pct(threshold) + ')</th><th class="num">' +
      label("估算占比", "estimated") + "</th><th>" + label("失败读", "failed reads") + "</th><th>" + label("最后成功采集", "last good read") +
      "</th><th>" + label("状态", "status") + "</th></tr></thead><tbody>" + body + "</tbody></table>";
  }

  function render(box, data) {
    const rows = data.gateways || [];
    if (!rows.length) { box.hidden = true; return; }
    box.hidden = false;
    const low = rows.filter((g) => g.status === "low").length;
    box.innerHTML = "<h2>" + label("采集质量（按网关）", "Meter data quality by gateway") + '<span class="hint">' +
      label("近 " + span(data.window_s), "last " + span(data.window_s)) + " · " + num(rows.length) + " " +
      label("个网关", "gateways") + (low ? " · " + num(low) + " " + label("个偏低", "low") : "") +
      '</span></h2><div class="body">' + table(rows, data.threshold) + "</div>";
  }

  window.powerbusPanel("quality-panel", "/api/metering/quality", POLL_MS, render);
})();
