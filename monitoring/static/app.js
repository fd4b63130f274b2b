/* powerbus dashboard. Plain JavaScript, no dependencies, works offline.
 *
 * Live data arrives once a second on /api/stream (Server-Sent Events): the overview
 * (services, nodes, totals, alerts) and the topology. History charts come from
 * /api/traffic and refresh every ten seconds. Pages: #/ (overview), #/topology,
 * #/alerts, #/service/NAME, #/node/ID.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- labels (中文 / English)
  const TEXT = {
    overview: ["概览", "Overview"], topology: ["拓扑", "Topology"], alerts: ["告警", "Alerts"],
    qps: ["请求速率", "Requests/s"], errorRate: ["错误率", "Error rate"], p50: ["P50 时延", "P50 latency"],
    p99: ["P99 时延", "P99 latency"], nodesUp: ["在线节点", "Nodes up"], services: ["服务", "Services"],
    nodes: ["节点", "Nodes"], activeAlerts: ["活动告警", "Active alerts"], service: ["服务", "Service"],
    node: ["节点", "Node"], state: ["状态", "State"], health: ["健康", "Health"], kind: ["类型", "Kind"],
    inFlight: ["处理中", "In flight"], total: ["累计请求", "Requests"], errors: ["错误", "Errors"],
    healthy: ["健康节点", "Healthy"], method: ["方法", "Method"], caller: ["调用方", "Caller"],
    code: ["状态码", "Code"], origin: ["来源", "Origin"], traffic: ["流量", "Traffic"],
    latency: ["时延", "Latency"], impact: ["故障影响分析", "Impact if this node goes down"],
    pickNode: ["点击拓扑图中的节点，查看它下线后的影响。", "Click a node in the graph to see what breaks if it goes down."],
    darkServices: ["将中断的服务", "Services that go dark"], degraded: ["容量下降的服务", "Services that lose capacity"],
    callersHit: ["受影响的调用方", "Callers hit"], impaired: ["连带失效的节点", "Nodes impaired in turn"],
    spof: ["单点故障", "Single points of failure"], cycles: ["依赖环", "Dependency cycles"],
    none: ["无", "none"], allClear: ["一切正常，没有活动告警", "All clear: no active alerts"],
    recent: ["最近恢复", "Recently cleared"], rules: ["告警规则", "Alert rules"], rule: ["规则", "Rule"],
    threshold: ["阈值", "Threshold"], window: ["窗口", "Window"], severity: ["级别", "Severity"],
    raised: ["触发", "Raised"], cleared: ["恢复", "Cleared"], subject: ["对象", "Subject"], message: ["说明", "Message"],
    live: ["实时", "Live"], stale: ["重连中", "Reconnecting"], connecting: ["连接中", "Connecting"],
    details: ["详情", "Details"], address: ["地址", "Address"], zone: ["区域", "Zone"], priority: ["优先级", "Priority"],
    dependsOn: ["依赖", "Depends on"], servedBy: ["服务节点", "Served by"], byMethod: ["按方法", "By method"],
    byCaller: ["按调用方", "By caller"], byNode: ["按节点", "By node"], byService: ["按服务", "By service"],
    byCode: ["按状态码", "By status code"], requestsPerS: ["请求/秒", "requests/s"], errorShare: ["错误占比", "error share"],
    since: ["启动于", "up since"], legendCall: ["调用（观测）", "calls (observed)"], legendDeclared: ["声明依赖", "declared dependency"],
    legendErr: ["错误率 >5%", "errors > 5%"], notFound: ["未找到", "Not found"], window_: ["时间范围", "Range"],
    capacity: ["容量损失", "capacity lost"], failover: ["切换到备用", "fails over to standby"],
    noImpact: ["无影响：其服务都有其他健康节点，且无调用方依赖。", "No impact: its services have other healthy nodes and nobody depends on it alone."],
    outageHead: ["将导致服务中断", "would cause an outage"], degradeHead: ["将导致容量下降", "would reduce capacity"],
    noTraffic: ["暂无流量", "No traffic yet"], noNodes: ["尚无节点注册", "No node has registered yet"],
    clickHint: ["点击节点查看影响", "click a node for its impact"], external: ["外部调用方", "external caller"],
    lastUpdate: ["更新于", "updated"], history: ["历史", "History"],
    declaredOnly: ["仅声明，无节点", "declared only, no node"], legendDeclaredBox: ["仅被声明的依赖服务", "service only declared as a dependency"],
    filter: ["筛选节点或服务", "filter nodes or services"], resetView: ["复位", "Reset"], showDeclared: ["显示仅声明的服务", "show declared-only services"],
    uptime: ["运行时长", "Uptime"], registeredAt: ["注册时间", "Registered"], lastHeartbeat: ["最近心跳", "Last heartbeat"],
    leaseTtl: ["租约 TTL", "Lease TTL"], version: ["版本", "Version"], healthOutput: ["健康输出", "Health output"],
    ago: ["前", "ago"], alreadyDown: ["已经不在服务中：它的流量已由其他节点承担或已中断，见上方告警。", "is already out of service: its traffic already went elsewhere or failed; see the alerts."],
    unknownNode: ["没有这个节点：无法分析影响。", "No such node is known: there is nothing to analyse."],
    actions: ["操作", "Actions"], drain: ["排空", "Drain"], disable: ["停用", "Disable"], enable: ["启用", "Enable"],
    weight: ["权重", "Weight"], deregister: ["强制注销", "Deregister"], purge: ["清除宕机节点", "Purge down nodes"],
    ack: ["确认", "Ack"], silence: ["静默 1 小时", "Silence 1h"], acked: ["已确认", "acknowledged"], silenced: ["已静默", "silenced"],
    p50chart: ["P50 时延", "P50 latency"], p99chart: ["P99 时延", "P99 latency"], timeZone: ["时区", "time zone"],
  };
  function L(key) {
    const t = TEXT[key] || [key, key];
    return `<span class="zh">${t[0]}</span><span class="en">${t[1]}</span>`;
  }
  function Lplain(key) {
    const t = TEXT[key] || [key, key];
    const mode = document.body.className;
    return mode === "lang-en" ? t[1] : mode === "lang-zh" ? t[0] : `${t[0]} ${t[1]}`;
  }
  const HEALTH = {
    up: ["在线", "up"], draining: ["排空中", "draining"], unreachable: ["不可达", "unreachable"],
    down: ["宕机", "down"], left: ["已下线", "left"], ok: ["正常", "ok"], degraded: ["降级", "degraded"],
    dark: ["中断", "dark"], unregistered: ["未注册", "unregistered"], critical: ["严重", "critical"],
    warning: ["警告", "warning"], cleared: ["已恢复", "cleared"], outage: ["中断", "outage"], failover: ["切换", "failover"],
  };
  // Alert texts in both languages: the bus words them in English; Chinese by kind.
  const ALERT_ZH = {
    node_down: (a) => `节点 ${a.subject} 不可达或租约已过期`,
    no_healthy_node: (a) => `服务 ${a.subject} 没有健康节点`,
    error_share: (a) => `服务 ${a.subject} 错误率 ${fmtPct(a.value)} 超过阈值`,
    p99_latency: (a) => `服务 ${a.subject} 的 P99 时延 ${fmtMs((a.value || 0) * 1000)} 超过阈值`,
    lease_flapping: (a) => `节点 ${a.subject} 的租约反复变化（${a.value || 0} 次）`,
  };
  function alertText(a) {
    // A flood of one rule comes as one grouped alert; its English message names the subjects.
    const grouped = a.subject === "(group)";
    const zh = grouped ? `规则 ${a.rule} 另有 ${a.value || 0} 个对象触发`
      : ALERT_ZH[a.kind] ? ALERT_ZH[a.kind](a) : `规则 ${a.rule} 触发：${a.subject}`;
    return `<span class="zh">${esc(zh)}</span><span class="en">${esc(a.message)}</span>`;
  }
  function stateWord(value) {
    const t = HEALTH[value] || [value, value];
    return `<span class="zh">${t[0]}</span><span class="en">${t[1]}</span>`;
  }
  function stateText(value) {
    const t = HEALTH[value] || [value, value];
    const mode = document.body.className;
    return mode === "lang-en" ? t[1] : mode === "lang-zh" ? t[0] : `${t[0]} ${t[1]}`;
  }
  function badge(value) {
    const t = HEALTH[value] || [value, value];
    return `<span class="badge ${esc(value)}" data-value="${esc(value)}"><span class="zh">${t[0]}</span><span class="en">${t[1]}</span></span>`;
  }

  // ---------------------------------------------------------------- formatting
  function esc(s) {
    return String(s === undefined || s === null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  function fmtQps(v) {
    if (!v) return "0";
    if (v >= 1000) return (v / 1000).toFixed(1) + "k";
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function fmtPct(v) {
    if (!v) return "0%";
    const p = v * 100;
    return (p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toFixed(2)) + "%";
  }
  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    if (v >= 100) return v.toFixed(0) + " ms";
    if (v >= 1) return v.toFixed(1) + " ms";
    return (v * 1000).toFixed(0) + " µs";
  }
  function fmtInt(v) { return (v || 0).toLocaleString("en-US"); }
  function fmtBytes(v) {
    if (!v) return "0 B";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + " " + units[i];
  }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function fmtTime(d, withDate) {
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return withDate ? `${d.getMonth() + 1}/${d.getDate()} ${t}` : t;
  }
  function fmtWhen(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function errClass(v) { return v > 0.05 ? "err-hi" : v > 0.01 ? "err-mid" : ""; }
  function shortService(name) {
    const parts = name.split(".");
    return parts.length > 2 ? parts[parts.length - 1] : name;
  }
  function servicePackage(name) {
    const parts = name.split(".");
    return parts.length > 2 ? parts.slice(0, -1).join(".") : "";
  }
  function link(kind, id, label) {
    return `<a href="#/${kind}/${encodeURIComponent(id)}">${label === undefined ? esc(id) : label}</a>`;
  }

  // ---------------------------------------------------------------- state and data
  const state = {
    overview: null, topology: null, lastMessage: 0, page: "overview", arg: "",
    range: localStorage.getItem("powerbus.range") || "15m", selected: "", impact: null,
    chartsTimer: null, breakdownTimer: null,
    view: { x: 0, y: 0, k: 1 }, filter: "", showDeclared: localStorage.getItem("powerbus.declared") !== "0",
    nodeRecord: null,
  };
  // A lapsed or ended login: back to the login page, then here again.
  function toLogin() {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.hash)}`);
  }
  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (r.status === 401) { toLogin(); throw new Error(`${path}: log in first`); }
    if (!r.ok && r.status !== 404) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  function connect() {
    const source = new EventSource("/api/stream");
    source.addEventListener("live", (e) => {
      const data = JSON.parse(e.data);
      state.overview = data.overview;
      state.topology = data.topology;
      state.lastMessage = Date.now();
      renderLive();
    });
    source.onerror = () => { setLive("stale"); };
  }
  async function loadOnce() {
    try {
      const [overview, topology] = await Promise.all([getJSON("/api/overview"), getJSON("/api/topology")]);
      if (!state.overview) { state.overview = overview; state.topology = topology; renderLive(); }
    } catch (e) { setLive("stale"); }
  }
  function setLive(mode) {
    const el = document.getElementById("live");
    el.dataset.state = mode;
    document.getElementById("live-text").innerHTML = L(mode);
  }
  setInterval(() => {
    const now = new Date();
    document.getElementById("clock").textContent =
      `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    if (state.lastMessage) setLive(Date.now() - state.lastMessage < 3500 ? "live" : "stale");
  }, 500);

  // ---------------------------------------------------------------- routing
  function route() {
    const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
    const [name, ...rest] = hash.split("/");
    state.page = name || "overview";
    state.arg = rest.join("/");
    for (const a of document.querySelectorAll("#tabs a")) {
      a.classList.toggle("active", a.dataset.page === state.page ||
        (a.dataset.page === "overview" && (state.page === "service" || state.page === "node")));
    }
    clearInterval(state.chartsTimer);
    clearInterval(state.breakdownTimer);
    const main = document.getElementById("page");
    main.dataset.page = state.page;
    if (state.page === "topology") main.innerHTML = topologyPage();
    else if (state.page === "alerts") main.innerHTML = alertsPage();
    else if (state.page === "service") main.innerHTML = detailPage("service", state.arg);
    else if (state.page === "node") main.innerHTML = detailPage("node", state.arg);
    else main.innerHTML = overviewPage();
    renderLive();
    if (state.page === "service" || state.page === "node") startDetail();
    if (state.page === "overview") startOverviewChart();
    if (state.page === "alerts") loadRules();
    window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);

  function renderLive() {
    const o = state.overview;
    if (!o) return;
    const count = o.alerts.length;
    const badgeEl = document.getElementById("alert-count");
    badgeEl.hidden = count === 0;
    badgeEl.textContent = count;
    fill("kpis", () => kpis(o));
    fill("services-table", () => servicesTable(o.services));
    fill("nodes-table", () => nodesTable(o.nodes));
    fill("alerts-panel", () => alertList(o.alerts, false));
    fill("alerts-active", () => alertList(o.alerts, false));
    fill("alerts-recent", () => alertList(o.recent_alerts, true));
    fill("graph", () => graph(state.topology, o));
    fill("impact", () => impactPanel());
    fill("structure", () => structurePanel(state.topology));
    if (state.page === "service" || state.page === "node") renderDetailLive();
  }
  // Unchanged markup is left in place: replacing it would drop a hovered tooltip and the
  // element under the pointer on every live update.
  const rendered = new WeakMap();
  function fill(id, render) {
    const el = document.getElementById(id);
    if (!el) return;
    const html = render();
    if (rendered.get(el) !== html) {
      el.innerHTML = html;
      rendered.set(el, html);
    }
  }

  // ---------------------------------------------------------------- overview
  function overviewPage() {
    return `
      <div class="grid kpis" id="kpis"></div>
      <div class="grid cols-main">
        <div class="stack">
          <section class="card"><h2>${L("topology")}<span class="hint">${L("clickHint")}</span></h2>
            ${graphTools()}<div class="body flush topology" id="graph"></div>${legend()}</section>
          <section class="card"><h2>${L("traffic")} · ${L("history")}<span class="hint">15 min</span></h2>
            <div class="body"><div id="overview-chart" class="chart"></div></div></section>
        </div>
        <div class="stack side">
          <section class="card"><h2>${L("activeAlerts")}</h2><div id="alerts-panel"></div></section>
          <section class="card"><h2>${L("impact")}</h2><div class="body impact" id="impact"></div></section>
        </div>
      </div>
      <div class="grid" style="margin-top:16px">
        <section class="card"><h2>${L("services")}</h2><div class="body flush" id="services-table"></div></section>
        <section class="card"><h2>${L("nodes")}<span class="hint"><button type="button" class="act danger" data-act="purge">${L("purge")}</button></span></h2><div class="body flush" id="nodes-table"></div></section>
      </div>`;
  }
  function kpis(o) {
    const t = o.totals;
    const up = o.nodes.filter((n) => n.health === "up").length;
    const live = o.nodes.filter((n) => n.health !== "left").length;
    const darkCount = o.services.filter((s) => s.state === "dark").length;
    const crit = o.alerts.filter((a) => a.severity === "critical").length;
    const since = new Date(o.started_at * 1000);
    // The same boxes the graph draws: services with nodes (or traffic), and declared-only ones.
    const drawn = { served: 0, declared: 0 };
    if (state.topology) {
      const saved = state.showDeclared;
      state.showDeclared = true;
      for (const b of layout(state.topology).boxes.values()) drawn[b.declaredOnly ? "declared" : "served"]++;
      state.showDeclared = saved;
    }
    return `
      <div class="card kpi" data-kpi="qps"><div class="label">${L("qps")}</div><div class="value">${fmtQps(t.qps)}<small>/s</small></div><div class="sub">${fmtInt(t.requests_total)} ${Lplain("total")}</div></div>
      <div class="card kpi ${t.error_share > 0.05 ? "bad" : t.error_share > 0.01 ? "warn" : ""}"><div class="label">${L("errorRate")}</div><div class="value">${fmtPct(t.error_share)}</div><div class="sub">${fmtInt(t.errors_total)} ${Lplain("errors")}</div></div>
      <div class="card kpi"><div class="label">${L("p50")}</div><div class="value">${fmtMs(t.p50_ms)}</div><div class="sub">${Math.round(o.window_s)} s ${Lplain("window")}</div></div>
      <div class="card kpi"><div class="label">${L("p99")}</div><div class="value">${fmtMs(t.p99_ms)}</div><div class="sub">${Math.round(o.window_s)} s ${Lplain("window")}</div></div>
      <div class="card kpi ${up < live ? "bad" : ""}"><div class="label">${L("nodesUp")}</div><div class="value">${up}<small>/ ${live}</small></div><div class="sub">${Lplain("since")} ${fmtTime(since, true)}</div></div>
      <div class="card kpi ${darkCount ? "bad" : ""}" data-kpi="services"><div class="label">${L("services")}</div><div class="value">${drawn.served}</div><div class="sub">${darkCount ? darkCount + " " + stateText("dark") : ""}${drawn.declared ? `${darkCount ? " · " : ""}+${drawn.declared} ${esc(Lplain("declaredOnly"))}` : darkCount ? "" : "&nbsp;"}</div></div>
      <div class="card kpi ${crit ? "bad" : o.alerts.length ? "warn" : ""}"><div class="label">${L("activeAlerts")}</div><div class="value">${o.alerts.length}</div><div class="sub">${crit ? crit + " " + stateText("critical") : "&nbsp;"}</div></div>`;
  }
  function servicesTable(services) {
    if (!services.length) return `<div class="empty">${L("noNodes")}</div>`;
    const rows = services.map((s) => `
      <tr data-service="${esc(s.service)}">
        <td class="name">${link("service", s.service, esc(shortService(s.service)))}${s.single_point_of_failure ? `<span class="tag spof" title="${esc(Lplain("spof"))}">SPOF</span>` : ""}<small>${esc(servicePackage(s.service))}</small></td>
        <td>${badge(s.state)}</td>
        <td class="num">${s.healthy} / ${s.nodes}</td>
        <td class="num" data-field="qps">${fmtQps(s.qps)}</td>
        <td class="num ${errClass(s.error_share)}">${fmtPct(s.error_share)}</td>
        <td class="num">${fmtMs(s.p50_ms)}</td>
        <td class="num">${fmtMs(s.p99_ms)}</td>
        <td class="num">${s.in_flight}</td>
        <td class="num" data-field="requests_total" data-value="${s.requests_total}">${fmtInt(s.requests_total)}</td>
      </tr>`).join("");
    return `<table class="data"><thead><tr><th>${L("service")}</th><th>${L("state")}</th><th class="num">${L("healthy")}</th>
      <th class="num">${L("qps")}</th><th class="num">${L("errorRate")}</th><th class="num">P50</th><th class="num">P99</th>
      <th class="num">${L("inFlight")}</th><th class="num">${L("total")}</th></tr></thead><tbody>${rows}</tbody></table>`;
  }
  // ---------------------------------------------------------------- operator actions
  // The registry's admin backend (POST /api/nodes/...) and the alert book's (POST
  // /api/alerts/...): every POST carries X-Powerbus-Action, which the bus requires so another
  // site's page cannot post to it (CSRF); destructive ones ask first.
  function nodeActions(n) {
    if (n.health === "down" || n.health === "left") return "";
    const id = esc(n.node_id);
    const rotation = n.health === "draining"
      ? `<button type="button" class="act" data-act="enable" data-node="${id}">${L("enable")}</button>`
      : `<button type="button" class="act" data-act="drain" data-node="${id}">${L("drain")}</button><button type="button" class="act" data-act="disable" data-node="${id}">${L("disable")}</button>`;
    return `<span class="actions">${rotation}<button type="button" class="act" data-act="weight" data-node="${id}">${L("weight")}</button><button type="button" class="act danger" data-act="deregister" data-node="${id}">${L("deregister")}</button></span>`;
  }
  const DESTRUCTIVE = {
    drain: ["将 {id} 移出轮转并等待其请求完成？", "Take {id} out of rotation and wait for its calls to finish?"],
    disable: ["停用 {id}（移出轮转）？", "Disable {id} (take it out of rotation)?"],
    deregister: ["强制注销 {id}？它将被标记为宕机。", "Force-deregister {id}? It is marked down."],
    purge: ["删除所有宕机节点的记录？", "Delete the records of every down node?"],
  };
  async function post(path) {
    const r = await fetch(path, { method: "POST", headers: { "X-Powerbus-Action": "1" }, cache: "no-store" });
    if (r.status === 401) toLogin();
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    return body;
  }
  function confirmText(act, id) {
    const t = DESTRUCTIVE[act];
    const mode = document.body.className;
    const text = mode === "lang-en" ? t[1] : mode === "lang-zh" ? t[0] : t[0] + "\n" + t[1];
    return text.replace(/\{id\}/g, id);
  }
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest && ev.target.closest("button.act[data-act]");
    if (!b || b.id === "graph-reset") return;
    const act = b.dataset.act;
    let path;
    if (act === "ack" || act === "silence") {
      const box = b.closest(".actions");
      const q = `rule=${encodeURIComponent(box.dataset.rule)}&subject=${encodeURIComponent(box.dataset.subject)}&by=dashboard`;
      path = `/api/alerts/${act}?${q}${act === "silence" ? "&for=1h" : ""}`;
    } else if (act === "purge") {
      path = "/api/nodes/purge";
    } else {
      const id = b.dataset.node;
      path = `/api/nodes/${encodeURIComponent(id)}/${act}`;
      if (act === "weight") {
        const value = prompt(`${Lplain("weight")} (1–10000): ${id}`, "100");
        if (value === null) return;
        path += `?value=${encodeURIComponent(value.trim())}`;
      }
      if (act === "drain") path += "?grace=30";
    }
    if (DESTRUCTIVE[act] && !confirm(confirmText(act, b.dataset.node || ""))) return;
    b.disabled = true;
    try {
      const reply = await post(path);
      toast(`${act}: ${JSON.stringify(reply)}`, false);
    } catch (e) {
      toast(`${act}: ${e.message}`, true);
    } finally {
      b.disabled = false;
    }
  });
  function toast(text, bad) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text;
    el.className = "toast" + (bad ? " bad" : "");
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 6000);
  }
  function nodesTable(nodes) {
    if (!nodes.length) return `<div class="empty">${L("noNodes")}</div>`;
    const rows = nodes.map((n) => `
      <tr data-node="${esc(n.node_id)}" data-health="${esc(n.health)}">
        <td class="name">${link("node", n.node_id)}${n.priority === "standby" ? '<span class="tag standby">standby</span>' : ""}<small class="addr" title="${esc(n.address)}">${esc(n.address)}</small></td>
        <td>${esc(n.kind)}</td>
        <td>${badge(n.health)}</td>
        <td>${n.services.map((s) => link("service", s, esc(shortService(s)))).join(", ")}</td>
        <td class="num">${fmtQps(n.qps)}</td>
        <td class="num ${errClass(n.error_share)}">${fmtPct(n.error_share)}</td>
        <td class="num">${fmtMs(n.p50_ms)}</td>
        <td class="num">${fmtMs(n.p99_ms)}</td>
        <td class="num">${n.in_flight}</td>
        <td class="num" data-field="requests_total" data-value="${n.requests_total}">${fmtInt(n.requests_total)}</td>
        <td>${nodeActions(n)}</td>
      </tr>`).join("");
    return `<table class="data"><thead><tr><th>${L("node")}</th><th>${L("kind")}</th><th>${L("health")}</th><th>${L("services")}</th>
      <th class="num">${L("qps")}</th><th class="num">${L("errorRate")}</th><th class="num">P50</th><th class="num">P99</th>
      <th class="num">${L("inFlight")}</th><th class="num">${L("total")}</th><th>${L("actions")}</th></tr></thead><tbody>${rows}</tbody></table>`;
  }
  function alertActions(a) {
    const acked = Boolean(a.acknowledged_by);
    return `<div class="actions" data-rule="${esc(a.rule)}" data-subject="${esc(a.subject)}">
      <button type="button" class="act" data-act="ack" ${acked ? "disabled" : ""}>${L(acked ? "acked" : "ack")}</button>
      <button type="button" class="act" data-act="silence" ${a.silenced ? "disabled" : ""}>${L(a.silenced ? "silenced" : "silence")}</button></div>`;
  }
  function alertList(alerts, cleared) {
    if (!alerts.length) {
      return cleared ? `<div class="empty">${L("none")}</div>` :
        `<div class="all-clear"><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="9" fill="currentColor" opacity=".15"/><path d="M6 10.5l2.5 2.5L14 7.5" stroke="currentColor" stroke-width="2" fill="none" stroke-linecap="round"/></svg>${L("allClear")}</div>`;
    }
    return `<ul class="alerts">${alerts.map((a) => `
      <li class="${esc(a.severity)} ${a.active ? "" : "cleared"}" data-rule="${esc(a.rule)}" data-subject="${esc(a.subject)}">
        <div class="what">${badge(a.active ? a.severity : "cleared")}<span class="subject">${esc(a.subject)}</span><span class="note">${esc(a.rule)}</span>
          <span class="when">${fmtWhen(a.raised_at)}${a.cleared_at ? " → " + fmtWhen(a.cleared_at) : ""}</span></div>
        <div class="msg">${alertText(a)}</div>${a.active ? alertActions(a) : ""}</li>`).join("")}</ul>`;
  }

  // ---------------------------------------------------------------- topology graph
  function legend() {
    return `<div class="legend">
      <span><i></i>${L("legendCall")}</span><span><i class="declared"></i>${L("legendDeclared")}</span>
      <span><i class="bad"></i>${L("legendErr")}</span>
      <span><b style="border-color:var(--ok)"></b>${stateWord("up")}</span>
      <span><b style="border-color:var(--bad);background:var(--bad-bg)"></b>${stateWord("down")}</span>
      <span><b style="border-color:var(--gone);background:var(--gone-bg)"></b>${stateWord("left")}</span>
      <span><b style="border-color:#9dbbe0;background:#eef4fb"></b>${L("service")}</span>
      <span><b style="border-color:var(--faint);border-style:dashed"></b>${L("legendDeclaredBox")}</span></div>`;
  }

  // Services are boxes holding their nodes; callers outside the bus (and nodes that serve
  // nothing) stand on the left. Each observed edge runs from its caller to the node that
  // served it, inside the service's box; declared dependencies run to the box itself.
  // Boxes are placed in columns by how deep they sit in the call graph.
  function layout(topo) {
    const nodeById = new Map(topo.nodes.map((n) => [n.node_id, n]));
    const boxes = new Map();
    const box = (name, data) => {
      if (!boxes.has(name)) boxes.set(name, { id: "s:" + name, name, data, members: [], preds: new Set(), succs: new Set() });
      return boxes.get(name);
    };
    for (const s of topo.services) {
      const b = box(s.service, s);
      for (const n of [...s.nodes, ...(s.left || [])]) b.members.push(n);
    }
    for (const e of topo.observed_edges) {
      const b = box(e.service, { service: e.service, nodes: [], healthy: [], left: [], state: "unregistered", callers: [] });
      // A node is drawn inside a service's box only if it serves it: a gateway that relays
      // calls (the CORBA gateway) is a caller, not a member of the service it calls.
      const n = nodeById.get(e.node);
      if (e.node && !b.members.includes(e.node) && (!n || n.services.includes(e.service))) b.members.push(e.node);
    }
    const callers = new Map();
    const servesSomething = (id) => nodeById.has(id) && nodeById.get(id).services.length > 0;
    const callerOf = (id) => {
      if (!servesSomething(id) && !callers.has(id)) callers.set(id, { id: "c:" + id, name: id, node: nodeById.get(id) || null, succs: new Set() });
      return servesSomething(id) ? null : callers.get(id);
    };
    const calls = [];
    for (const e of topo.observed_edges) if (e.caller) calls.push({ ...e, observed: true });
    const declared = [];
    for (const d of topo.declared_edges) {
      const b = box(d.service, { service: d.service, nodes: [], healthy: [], left: [], state: "declared", callers: [] });
      if (!state.showDeclared && !b.members.length && !(b.data.nodes || []).length) { boxes.delete(d.service); continue; }
      declared.push(d);
    }
    // A service nobody registered, only named as a dependency, is no outage: drawn small and grey.
    for (const b of boxes.values()) b.declaredOnly = !b.members.length && !(b.data.nodes || []).length && !(b.data.left || []).length;
    // Service graph: the boxes of a caller's services → the called box.
    const from = (caller) => {
      const c = callerOf(caller);
      return c ? [c] : nodeById.get(caller).services.map((s) => boxes.get(s)).filter(Boolean);
    };
    for (const e of [...calls, ...declared]) {
      for (const f of from(e.caller)) {
        const to = boxes.get(e.service);
        if (!to) continue;
        f.succs.add(to);
        if (to.preds) to.preds.add(f);
      }
    }
    // Ranks by longest path, ignoring edges that close a cycle (found depth-first).
    const all = [...callers.values(), ...boxes.values()];
    const back = new Set();
    const color = new Map();
    const visit = (v) => {
      color.set(v, 1);
      for (const w of [...v.succs].sort((a, b) => (a.id < b.id ? -1 : 1))) {
        if (color.get(w) === 1) back.add(v.id + ">" + w.id);
        else if (!color.get(w)) visit(w);
      }
      color.set(v, 2);
    };
    for (const v of all.sort((a, b) => (a.id < b.id ? -1 : 1))) if (!color.get(v)) visit(v);
    const rank = new Map();
    const rankOf = (v, seen) => {
      if (rank.has(v)) return rank.get(v);
      if (seen.has(v)) return 0;
      seen.add(v);
      let r = v.id.startsWith("c:") ? 0 : callers.size ? 1 : 0;
      for (const p of v.preds || []) if (!back.has(p.id + ">" + v.id)) r = Math.max(r, rankOf(p, seen) + 1);
      rank.set(v, r);
      return r;
    };
    for (const v of all) rankOf(v, new Set());
    const columns = [];
    for (const v of all) (columns[rank.get(v)] = columns[rank.get(v)] || []).push(v);
    const cols = columns.filter(Boolean);
    const order = new Map();
    cols.forEach((c) => c.forEach((v, i) => order.set(v, i)));
    for (let sweep = 0; sweep < 4; sweep++) {
      for (const col of cols) {
        const score = (v) => {
          const near = [...(v.preds || [])].filter((p) => order.has(p));
          return near.length ? near.reduce((a, p) => a + order.get(p), 0) / near.length : order.get(v);
        };
        col.sort((a, b) => score(a) - score(b) || (a.id < b.id ? -1 : 1));
        col.forEach((v, i) => order.set(v, i));
      }
    }
    const W = 210, PILL = 30, HEAD = 38, GAPX = 130, GAPY = 22, PAD = 24;
    const heightOf = (v) => (v.id.startsWith("c:") || v.declaredOnly ? 46 : HEAD + Math.max(1, v.members.length) * (PILL + 6) + 6);
    const colHeights = cols.map((c) => c.reduce((a, v) => a + heightOf(v), 0) + (c.length - 1) * GAPY);
    const height = PAD * 2 + Math.max(60, ...colHeights);
    const pills = new Map();
    const colX = cols.map((_c, ci) => PAD + ci * (W + GAPX));
    cols.forEach((col, ci) => {
      let y = (height - colHeights[ci]) / 2;
      for (const v of col) {
        v.x = colX[ci]; v.y = y; v.w = W; v.h = heightOf(v); v.col = ci;
        if (v.members) {
          v.members.forEach((m, i) => {
            const p = { service: v.name, node: m, x: v.x + 8, y: v.y + HEAD + i * (PILL + 6), w: W - 16, h: PILL, col: ci };
            pills.set(v.name + "|" + m, p);
          });
        }
        y += v.h + GAPY;
      }
    });
    const width = PAD * 2 + cols.length * W + Math.max(0, cols.length - 1) * GAPX;
    return { boxes, callers, pills, calls, declared, width, height, back, nodeById, cols, colX, W };
  }

  function graph(topo, overview) {
    if (!topo || (!topo.nodes.length && !topo.observed_edges.length)) return `<div class="empty">${L("noNodes")}</div>`;
    const g = layout(topo);
    const en = document.body.className === "lang-en";
    const nodeRates = new Map((overview ? overview.nodes : []).map((n) => [n.node_id, n]));
    const svcRates = new Map((overview ? overview.services : []).map((s) => [s.service, s]));
    const cycleServices = new Set((topo.cycles || []).flat());
    const hit = impactMarks();
    const maxQps = Math.max(1, ...g.calls.map((e) => e.qps || 0));
    const stroke = (q) => 1.2 + 2.4 * Math.sqrt((q || 0) / maxQps);
    // Where an edge leaves its caller: a caller box, or the caller's pill in its own service.
    const origin = (caller) => {
      const c = g.callers.get(caller);
      if (c) return { x: c.x + c.w, y: c.y + c.h / 2, x0: c.x, y0: c.y + c.h, col: c.col };
      const n = g.nodeById.get(caller);
      const p = n && g.pills.get(n.services[0] + "|" + caller);
      return p ? { x: p.x + p.w, y: p.y + p.h / 2, x0: p.x, y0: p.y + p.h, col: p.col } : null;
    };
    // A free height in column k near y: between or around its boxes.
    const freeY = (k, y) => {
      const spans = g.cols[k].map((v) => [v.y - 8, v.y + v.h + 8]);
      const inside = spans.find(([lo, hi]) => y > lo && y < hi);
      if (!inside) return y;
      const up = inside[0], down = inside[1];
      const clear = (yy) => !spans.some(([lo, hi]) => yy > lo && yy < hi);
      return Math.abs(y - up) <= Math.abs(down - y) && clear(up) ? up : clear(down) ? down : up;
    };
    const curve = (a, bx, by, bxLeft, bcol, aim) => {
      if (bxLeft > a.x + 10) {
        // Forward: through the gaps of every column in between, so no box is crossed.
        const pts = [[a.x, a.y]];
        for (let k = a.col + 1; k < bcol; k++) {
          const x = g.colX[k];
          const toward = aim === undefined ? by : aim;
          const y = freeY(k, a.y + ((toward - a.y) * (x - a.x)) / (bxLeft - a.x));
          pts.push([x - 14, y], [x + g.W + 14, y]);
        }
        pts.push([bxLeft, by]);
        let d = `M${pts[0][0]},${pts[0][1]}`;
        for (let i = 1; i < pts.length; i++) {
          const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
          if (y0 === y1 && i % 2 === 0) { d += ` L${x1},${y1}`; continue; }
          const mx = (x0 + x1) / 2;
          d += ` C${mx},${y0} ${mx},${y1} ${x1},${y1}`;
        }
        const [x0, y0] = pts[0], [x1, y1] = pts[1];
        return { d, lx: (x0 + x1) / 2, ly: (y0 + y1) / 2, back: false };
      }
      // Backwards (a cycle, or a call within a column): loop below.
      const dip = Math.max(a.y0, by) + 40;
      return { d: `M${a.x - 20},${a.y0} C${a.x - 20},${dip} ${bx},${dip} ${bx},${by + 15}`, lx: (a.x + bx) / 2, ly: dip - 8, back: true };
    };
    // Rate labels, one per caller and service, moved along until they overlap nothing.
    const placed = [];
    const labelAt = (c, text) => {
      const w = text.length * 6.2 + 6, h = 14;
      for (const dy of [0, -16, 16, -32, 32, -48, 48]) {
        const x = c.lx - w / 2, y = c.ly - 10 + dy;
        if (!placed.some((p) => x < p.x + p.w && p.x < x + w && y < p.y + p.h && p.y < y + h)) {
          placed.push({ x, y, w, h });
          return `<text class="rate" x="${c.lx}" y="${y + 10}" text-anchor="middle">${text}</text>`;
        }
      }
      return "";
    };
    const edges = [];
    for (const d of g.declared) {
      const a = origin(d.caller), b = g.boxes.get(d.service);
      if (!a || !b) continue;
      const observed = g.calls.some((e) => e.caller === d.caller && e.service === d.service);
      if (observed) continue;
      const c = curve(a, b.x + b.w / 2, b.y + 19, b.x, b.col);
      edges.push(`<g class="edge call declared ${c.back ? "cycle" : ""}${dim(d.caller) && dim(d.service) ? " filtered-out" : ""}" data-caller="${esc(d.caller)}" data-service="${esc(d.service)}">
        <path d="${c.d}" stroke-width="1.4" marker-end="url(#arrow-light)"><title>${esc(d.caller)} → ${esc(d.service)} (${d.required ? "required" : "optional"})</title></path></g>`);
    }
    const pairs = new Map();
    for (const e of g.calls) {
      const k = e.caller + "|" + e.service;
      const sum = pairs.get(k) || { qps: 0, requests: 0, errors: 0, labelled: false };
      sum.qps += e.qps || 0; sum.requests += e.requests || 0; sum.errors += (e.requests || 0) * (e.error_share || 0);
      pairs.set(k, sum);
    }
    const labels = [];
    for (const e of g.calls) {
      const a = origin(e.caller), p = g.pills.get(e.service + "|" + e.node);
      const b = p || g.boxes.get(e.service);
      if (!a || !b) continue;
      const target = g.boxes.get(e.service);
      const c = curve(a, b.x + b.w / 2, b.y + (p ? p.h / 2 : 19), b.x, target.col, target.y + target.h / 2);
      const pair = pairs.get(e.caller + "|" + e.service);
      const share = pair.requests ? pair.errors / pair.requests : 0;
      const cls = share > 0.05 ? "bad" : share > 0.02 ? "warn" : "";
      // Rates are on the pills and boxes and in each edge's tooltip, never on the edges:
      // edges bundle into one box, and a label there sits on top of the others.
      const label = "";
      edges.push(`<g class="edge call observed ${cls} ${c.back ? "cycle" : ""}${dim(e.caller) && dim(e.node) ? " filtered-out" : ""}" data-caller="${esc(e.caller)}" data-service="${esc(e.service)}" data-node="${esc(e.node)}" data-qps="${(e.qps || 0).toFixed(3)}">
        <path d="${c.d}" stroke-width="${e.qps > 0 ? stroke(e.qps) : 1.2}" ${e.qps > 0 ? "" : 'stroke-dasharray="2 3"'} marker-end="url(#arrow)"><title>${esc(e.caller)} → ${esc(e.service)} → ${esc(e.node)}: ${fmtQps(e.qps)}/s, ${fmtPct(share)} errors, ${fmtInt(e.total)} calls</title></path>
        ${label ? `<text class="rate" x="${c.lx}" y="${c.ly}" text-anchor="middle">${label}</text>` : ""}</g>`);
    }
    const shapes = [];
    for (const c of g.callers.values()) {
      const sub = c.node ? `${c.node.kind} · ${HEALTH[c.node.health] ? HEALTH[c.node.health][en ? 1 : 0] : c.node.health}` : en ? "external caller" : "外部调用方";
      const mark = hit.get(c.id) ? " hit-" + hit.get(c.id) : "";
      shapes.push(`<g class="vertex caller${c.node ? " node " + esc(c.node.health) : ""}${mark}${dim(c.name)}" data-id="${esc(c.id)}" ${c.node ? `data-node="${esc(c.name)}" data-health="${esc(c.node.health)}"` : ""}>
        <title>${esc(c.name)}</title><rect x="${c.x}" y="${c.y}" width="${c.w}" height="${c.h}" rx="8"/>
        <text x="${c.x + 12}" y="${c.y + 20}">${esc(clip(c.name, 26))}</text><text class="sub" x="${c.x + 12}" y="${c.y + 36}">${esc(sub)}</text></g>`);
    }
    for (const b of g.boxes.values()) {
      const s = b.data, r = svcRates.get(b.name);
      const svcState = b.declaredOnly ? "declared" : s.state || "ok";
      if (b.declaredOnly) {
        shapes.push(`<g class="vertex service declared${dim(b.name)}" data-id="${esc(b.id)}" data-service="${esc(b.name)}" data-declared="1">
          <title>${esc(b.name)} — ${esc(Lplain("declaredOnly"))}</title><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>
          <text class="head" x="${b.x + 12}" y="${b.y + 19}">${esc(clip(shortService(b.name), 24))}</text>
          <text class="sub" x="${b.x + 12}" y="${b.y + 35}">${esc(Lplain("declaredOnly"))}</text></g>`);
        continue;
      }
      const mark = hit.get(b.id) ? " hit-" + hit.get(b.id) : "";
      const tags = (s.single_point_of_failure ? " · SPOF" : "") + (cycleServices.has(b.name) ? " · ⟲" : "");
      shapes.push(`<g class="vertex service ${esc(svcState)}${mark}${dim(b.name)}" data-id="${esc(b.id)}" data-service="${esc(b.name)}">
        <title>${esc(b.name)}</title><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>
        <text class="head" x="${b.x + 12}" y="${b.y + 17}"><a href="#/service/${encodeURIComponent(b.name)}">${esc(clip(shortService(b.name), 20))}</a></text>
        <text class="sub" x="${b.x + 12}" y="${b.y + 31}">${(s.healthy || []).length}/${(s.nodes || []).length} ${esc(Lplain("healthy"))}${r && r.qps ? " · " + fmtQps(r.qps) + "/s" : ""}${tags}</text></g>`);
      for (const m of b.members) {
        const p = g.pills.get(b.name + "|" + m);
        const n = g.nodeById.get(m);
        const health = n ? n.health : "unregistered";
        const rate = nodeRates.get(m);
        const col = { up: "var(--ok)", draining: "var(--warn)", left: "var(--gone)", unregistered: "var(--gone)" }[health] || "var(--bad)";
        const sel = state.selected === m ? " selected" : "";
        const pmark = hit.get("n:" + m) ? " hit-" + hit.get("n:" + m) : "";
        shapes.push(`<g class="vertex node ${esc(health)}${sel}${pmark}${dim(m)}" data-id="n:${esc(m)}" data-node="${esc(m)}" data-in="${esc(b.name)}" data-health="${esc(health)}">
          <title>${esc(m)}${n ? " (" + esc(n.kind) + ", " + esc(n.address) + ")" : ""} — ${esc(HEALTH[health] ? HEALTH[health].join(" / ") : health)}</title>
          <rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="15"/>
          <circle class="dot" cx="${p.x + 14}" cy="${p.y + p.h / 2}" r="4.5" fill="${col}"/>
          <text x="${p.x + 25}" y="${p.y + p.h / 2 + 4}">${esc(clip(m, 16))}${n && n.priority === "standby" ? " ◦" : ""}</text>
          <text class="sub" x="${p.x + p.w - 10}" y="${p.y + p.h / 2 + 4}" text-anchor="end">${health !== "up" ? esc((HEALTH[health] || [health, health])[en ? 1 : 0]) : rate && rate.qps ? fmtQps(rate.qps) + "/s" : ""}</text></g>`);
      }
    }
    const v = state.view;
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${g.width} ${g.height + 40}" style="width:100%;max-width:${g.width}px" role="img" aria-label="topology">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7a8aa0"/></marker>
      <marker id="arrow-light" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#b8c2cf"/></marker></defs>
      <g class="viewport" transform="translate(${v.x},${v.y}) scale(${v.k})">${shapes.join("")}${edges.join("")}${labels.join("")}</g></svg>`;
  }
  // The graph filter: what does not match is dimmed (edges: when neither end matches).
  function dim(name) {
    const f = state.filter.trim().toLowerCase();
    return f && !String(name).toLowerCase().includes(f) ? " filtered-out" : "";
  }
  // Zoom (wheel, around the pointer) and pan (drag) of the graph; kept across live updates.
  document.addEventListener("wheel", (ev) => {
    const svg = ev.target.closest && ev.target.closest("#graph svg");
    if (!svg) return;
    ev.preventDefault();
    const box = svg.getBoundingClientRect(), vb = svg.viewBox.baseVal;
    const px = ((ev.clientX - box.left) / box.width) * vb.width, py = ((ev.clientY - box.top) / box.height) * vb.height;
    const v = state.view, k = Math.min(4, Math.max(0.3, v.k * (ev.deltaY < 0 ? 1.2 : 1 / 1.2)));
    state.view = { k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
    applyView();
  }, { passive: false });
  let drag = null;
  document.addEventListener("mousedown", (ev) => {
    const svg = ev.target.closest && ev.target.closest("#graph svg");
    if (!svg || ev.target.closest(".vertex")) return;
    const box = svg.getBoundingClientRect();
    drag = { x: ev.clientX, y: ev.clientY, v: { ...state.view }, scale: svg.viewBox.baseVal.width / box.width };
    ev.preventDefault();
  });
  document.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    state.view = { ...drag.v, x: drag.v.x + (ev.clientX - drag.x) * drag.scale, y: drag.v.y + (ev.clientY - drag.y) * drag.scale };
    applyView();
  });
  document.addEventListener("mouseup", () => { drag = null; });
  function applyView() {
    const g = document.querySelector("#graph g.viewport");
    if (g) g.setAttribute("transform", `translate(${state.view.x},${state.view.y}) scale(${state.view.k})`);
  }
  document.addEventListener("input", (ev) => {
    if (ev.target.id !== "graph-filter") return;
    state.filter = ev.target.value;
    fill("graph", () => graph(state.topology, state.overview));
  });
  document.addEventListener("change", (ev) => {
    if (ev.target.id !== "graph-declared") return;
    state.showDeclared = ev.target.checked;
    localStorage.setItem("powerbus.declared", state.showDeclared ? "1" : "0");
    fill("graph", () => graph(state.topology, state.overview));
  });
  document.addEventListener("click", (ev) => {
    if (!ev.target.closest || !ev.target.closest("#graph-reset")) return;
    state.view = { x: 0, y: 0, k: 1 };
    applyView();
  });
  function graphTools() {
    return `<div class="graph-tools"><input type="search" id="graph-filter" placeholder="${esc(Lplain("filter"))}" value="${esc(state.filter)}">
      <label class="note"><input type="checkbox" id="graph-declared" ${state.showDeclared ? "checked" : ""}> ${L("showDeclared")}</label>
      <button type="button" id="graph-reset" class="act">${L("resetView")}</button><span class="note">⇕ zoom · ✥ pan</span></div>`;
  }
  function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  function impactMarks() {
    const marks = new Map();
    const i = state.impact;
    if (!i || !state.selected) return marks;
    for (const s of i.services) marks.set("s:" + s.service, s.effect === "dark" ? "dark" : "degraded");
    for (const c of i.callers_hit) {
      const id = state.topology && state.topology.nodes.some((n) => n.node_id === c.caller) ? "n:" + c.caller : "c:" + c.caller;
      if (!marks.has(id) || c.effect === "outage") marks.set(id, c.effect === "outage" ? "dark" : "degraded");
    }
    for (const n of i.impaired_nodes) marks.set("n:" + n.node, "dark");
    return marks;
  }

  document.addEventListener("click", (ev) => {
    const v = ev.target.closest && ev.target.closest(".vertex.node");
    if (v && v.dataset.node) selectNode(v.dataset.node);
  });
  async function selectNode(node) {
    state.selected = node;
    try { state.impact = await getJSON("/api/impact?node=" + encodeURIComponent(node)); } catch (e) { state.impact = null; }
    renderLive();
  }

  function impactPanel() {
    const i = state.impact;
    if (!state.selected || !i) return `<p class="pick">${L("pickNode")}</p>`;
    const known = state.topology && state.topology.nodes.find((n) => n.node_id === state.selected);
    if (i.known === false || !known) return `<div class="headline warn" data-impact="unknown"><b>${esc(state.selected)}</b> ${L("unknownNode")}</div>`;
    if (known.health !== "up" && known.health !== "draining") {
      return `<div class="headline bad" data-impact="down"><b>${esc(state.selected)}</b> ${badge(known.health)} ${L("alreadyDown")}</div>`;
    }
    const dark = i.services.filter((s) => s.effect === "dark");
    const other = i.services.filter((s) => s.effect !== "dark");
    const outage = i.callers_hit.filter((c) => c.effect === "outage");
    const head = dark.length || outage.length
      ? `<div class="headline bad"><b>${esc(i.node)}</b> ${L("outageHead")}</div>`
      : other.length ? `<div class="headline warn"><b>${esc(i.node)}</b> ${L("degradeHead")}</div>`
      : `<div class="headline">${L("noImpact")}</div>`;
    const list = (items, render) => items.length ? `<ul>${items.map(render).join("")}</ul>` : `<div class="none">${L("none")}</div>`;
    return `${head}
      <h3>${L("darkServices")}</h3>${list(dark, (s) => `<li data-effect="dark">${badge("dark")}<span class="grow">${link("service", s.service)}</span><span class="note">${s.depth ? "depth " + s.depth : ""}</span></li>`)}
      <h3>${L("degraded")}</h3>${list(other, (s) => `<li data-effect="${esc(s.effect)}">${badge(s.effect)}<span class="grow">${link("service", s.service)}</span><span class="note">${s.healthy_before}→${s.healthy_after} · −${fmtPct(s.capacity_lost)}</span></li>`)}
      <h3>${L("callersHit")}</h3>${list(i.callers_hit, (c) => `<li>${badge(c.effect)}<span class="grow mono">${esc(c.caller)}</span><span class="note">→ ${c.services.map((x) => esc(shortService(x))).join(", ")}${c.depth > 1 ? " · depth " + c.depth : ""}</span></li>`)}
      ${i.impaired_nodes.length ? `<h3>${L("impaired")}</h3>${list(i.impaired_nodes, (n) => `<li>${badge("down")}<span class="grow mono">${esc(n.node)}</span><span class="note">${esc(n.because)}</span></li>`)}` : ""}`;
  }

  // ---------------------------------------------------------------- topology page
  function topologyPage() {
    return `
      <div class="page-head"><h1>${L("topology")}</h1><span class="spacer"></span>
        <a href="/api/topology?format=dot" class="note">Graphviz (.dot)</a> · <a href="/api/topology" class="note">JSON</a></div>
      <div class="grid cols-main">
        <section class="card"><h2>${L("topology")}<span class="hint">${L("clickHint")}</span></h2>${graphTools()}<div class="body flush topology" id="graph"></div>${legend()}</section>
        <div class="stack">
          <section class="card"><h2>${L("impact")}</h2><div class="body impact" id="impact"></div></section>
          <section class="card"><h2>${L("spof")} · ${L("cycles")}</h2><div class="body impact" id="structure"></div></section>
        </div>
      </div>`;
  }
  function structurePanel(topo) {
    if (!topo) return "";
    const spofs = topo.single_points_of_failure;
    const cycles = topo.cycles;
    return `<h3>${L("spof")}</h3>${spofs.length ? `<ul>${spofs.map((s) => `<li><span class="tag spof">SPOF</span><span class="grow">${link("service", s)}</span></li>`).join("")}</ul>` : `<div class="none">${L("none")}</div>`}
      <h3>${L("cycles")}</h3>${cycles.length ? `<ul class="cycle-list">${cycles.map((c) => `<li>⟲ <span class="grow mono">${c.map((s) => esc(shortService(s))).join(" → ")}</span></li>`).join("")}</ul>` : `<div class="none">${L("none")}</div>`}`;
  }

  // ---------------------------------------------------------------- alerts page
  function alertsPage() {
    return `
      <div class="page-head"><h1>${L("alerts")}</h1></div>
      <div class="grid cols-2">
        <section class="card"><h2>${L("activeAlerts")}</h2><div id="alerts-active"></div></section>
        <section class="card"><h2>${L("recent")}</h2><div id="alerts-recent"></div></section>
      </div>
      <section class="card" style="margin-top:16px"><h2>${L("rules")}</h2><div class="body flush" id="rules"></div></section>`;
  }
  async function loadRules() {
    const data = await getJSON("/api/alerts");
    const el = document.getElementById("rules");
    if (!el) return;
    el.innerHTML = `<table class="data"><thead><tr><th>${L("rule")}</th><th>${L("kind")}</th><th>${L("severity")}</th><th>${L("subject")}</th>
      <th class="num">${L("threshold")}</th><th class="num">${L("window")}</th></tr></thead><tbody>${data.rules.map((r) => `
      <tr><td class="name">${esc(r.name)}</td><td class="mono">${esc(r.kind)}</td><td>${badge(r.severity)}</td>
      <td class="mono">${esc(r.service || r.node || "*")}</td>
      <td class="num">${r.kind === "error_share" ? fmtPct(r.threshold) : r.kind === "p99_latency" ? fmtMs(r.threshold * 1000) : r.threshold ? r.threshold : "–"}</td>
      <td class="num">${["error_share", "p99_latency", "lease_flapping"].includes(r.kind) ? (r.window_s >= 60 ? r.window_s / 60 + " min" : r.window_s + " s") : "–"}</td></tr>`).join("")}</tbody></table>`;
  }

  // ---------------------------------------------------------------- service and node pages
  const RANGES = [["15m", "15 min"], ["1h", "1 h"], ["6h", "6 h"], ["24h", "24 h"], ["7d", "7 d"]];
  function detailPage(kind, id) {
    const title = kind === "service" ? shortService(id) : id;
    const sub = kind === "service" ? servicePackage(id) : "";
    return `
      <div class="page-head"><a href="#/" class="crumb">${L("overview")}</a><span class="crumb">/</span>
        <h1 data-detail="${esc(kind)}">${esc(title)}</h1><span class="note mono">${esc(sub)}</span><span id="detail-badge"></span>
        <span class="spacer"></span>
        <span class="note">${L("window_")}</span>
        <div class="segmented" id="ranges">${RANGES.map(([v, l]) => `<button type="button" data-range="${v}" class="${v === state.range ? "on" : ""}">${l}</button>`).join("")}</div></div>
      <div class="grid kpis" id="detail-kpis"></div>
      <div class="grid cols-charts">
        <section class="card"><h2>${L("qps")}<span class="hint">${L(kind === "service" ? "byNode" : "byService")}</span></h2><div class="body"><div class="chart" id="chart-qps"></div></div></section>
        <section class="card"><h2>${L("errorRate")}</h2><div class="body"><div class="chart" id="chart-errors"></div></div></section>
        <section class="card"><h2>${L("p50chart")}</h2><div class="body"><div class="chart" id="chart-p50"></div></div></section>
        <section class="card"><h2>${L("p99chart")}</h2><div class="body"><div class="chart" id="chart-p99"></div></div></section>
      </div>
      <div class="grid cols-main" style="margin-top:16px">
        <div class="stack" id="breakdown"></div>
        <div class="stack">
          <section class="card"><h2>${L("details")}</h2><div class="body" id="facts"></div></section>
          ${kind === "node" ? `<section class="card"><h2>${L("impact")}</h2><div class="body impact" id="impact"></div></section>` : ""}
        </div>
      </div>`;
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("#ranges button");
    if (!b) return;
    state.range = b.dataset.range;
    localStorage.setItem("powerbus.range", state.range);
    for (const x of document.querySelectorAll("#ranges button")) x.classList.toggle("on", x === b);
    loadCharts();
  });
  function startDetail() {
    if (state.page === "node") selectNode(state.arg);
    loadCharts();
    loadBreakdown();
    state.chartsTimer = setInterval(loadCharts, 10000);
    state.breakdownTimer = setInterval(loadBreakdown, 2000);
  }
  function renderDetailLive() {
    const o = state.overview;
    const kind = state.page, id = state.arg;
    const item = kind === "service" ? o.services.find((s) => s.service === id) : o.nodes.find((n) => n.node_id === id);
    fill("detail-badge", () => (item ? badge(kind === "service" ? item.state : item.health) : badge("unregistered")));
    fill("detail-kpis", () => (item ? `
      <div class="card kpi"><div class="label">${L("qps")}</div><div class="value">${fmtQps(item.qps)}<small>/s</small></div></div>
      <div class="card kpi ${item.error_share > 0.05 ? "bad" : ""}"><div class="label">${L("errorRate")}</div><div class="value">${fmtPct(item.error_share)}</div></div>
      <div class="card kpi"><div class="label">${L("p50")}</div><div class="value">${fmtMs(item.p50_ms)}</div></div>
      <div class="card kpi"><div class="label">${L("p99")}</div><div class="value">${fmtMs(item.p99_ms)}</div></div>
      <div class="card kpi"><div class="label">${L("inFlight")}</div><div class="value">${item.in_flight}</div></div>
      <div class="card kpi"><div class="label">${L("total")}</div><div class="value" data-field="requests_total">${fmtInt(item.requests_total)}</div><div class="sub">${fmtInt(item.errors_total)} ${Lplain("errors")}</div></div>` :
      `<div class="card kpi"><div class="label">${L("notFound")}</div><div class="value">–</div></div>`));
    fill("facts", () => facts(kind, id, item));
  }
  function facts(kind, id, item) {
    const topo = state.topology;
    if (kind === "service") {
      const s = topo && topo.services.find((x) => x.service === id);
      return `<dl class="facts"><dt>${L("service")}</dt><dd class="mono">${esc(id)}</dd>
        <dt>${L("servedBy")}</dt><dd>${s ? [...s.nodes, ...(s.left || [])].map((n) => link("node", n)).join(", ") || "–" : "–"}</dd>
        <dt>${L("caller")}</dt><dd>${s ? s.callers.map(esc).join(", ") || "–" : "–"}</dd>
        ${s && s.single_point_of_failure ? `<dt>${L("spof")}</dt><dd><span class="tag spof">SPOF</span></dd>` : ""}</dl>`;
    }
    const n = topo && topo.nodes.find((x) => x.node_id === id);
    if (!n) return `<div class="none">${L("notFound")}</div>`;
    const r = state.nodeRecord && state.nodeRecord.node_id === id ? state.nodeRecord : null;
    const now = Date.now();
    const live = r && r.health !== "down" && r.health !== "left";
    const life = r ? `<dt>${L("uptime")}</dt><dd data-fact="uptime">${live ? fmtAge(now - Date.parse(r.registered_at)) : "–"}</dd>
      <dt>${L("registeredAt")}</dt><dd data-fact="registered">${fmtWhen(r.registered_at)} ${tzName()}</dd>
      <dt>${L("lastHeartbeat")}</dt><dd data-fact="heartbeat">${fmtWhen(r.last_heartbeat_at)} · ${fmtAge(now - Date.parse(r.last_heartbeat_at))} ${esc(Lplain("ago"))}</dd>
      <dt>${L("leaseTtl")}</dt><dd data-fact="ttl">${r.lease_ttl_s} s</dd>
      <dt>${L("version")}</dt><dd data-fact="version">${esc(r.version || "–")}</dd>
      <dt>${L("healthOutput")}</dt><dd data-fact="health">${badge(r.health)} <span class="mono">in_flight ${r.load.in_flight} · cpu ${(r.load.cpu * 100).toFixed(0)}% · ${fmtInt(r.load.requests_total)} req · ${fmtInt(r.load.errors_total)} err</span></dd>` : "";
    return `<dl class="facts">${life}<dt>${L("kind")}</dt><dd>${esc(n.kind)}</dd><dt>${L("address")}</dt><dd class="mono">${esc(n.address)}</dd>
      <dt>${L("priority")}</dt><dd>${esc(n.priority)} · weight ${n.weight}</dd><dt>${L("zone")}</dt><dd>${esc(n.zone || "–")}</dd>
      <dt>${L("services")}</dt><dd>${n.services.map((s) => link("service", s, esc(s))).join("<br>") || "–"}</dd>
      <dt>${L("dependsOn")}</dt><dd>${n.dependencies.map((s) => link("service", s, esc(s))).join("<br>") || "–"}</dd></dl>`;
  }
  async function loadNodeRecord() {
    const id = state.arg;
    let data;
    try { data = await getJSON("/api/nodes?include_down=1"); } catch (e) { return; }
    if (state.page !== "node" || state.arg !== id) return;
    state.nodeRecord = data.nodes.find((n) => n.node_id === id) || null;
    fill("facts", () => facts("node", id, null));
  }
  function fmtAge(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function tzName() {
    const off = -new Date().getTimezoneOffset();
    const sign = off < 0 ? "−" : "+";
    const h = Math.floor(Math.abs(off) / 60), m = Math.abs(off) % 60;
    return "UTC" + (off ? sign + h + (m ? ":" + pad(m) : "") : "");
  }
  async function loadBreakdown() {
    if (state.page === "node") loadNodeRecord();
    const kind = state.page, id = state.arg;
    const data = await getJSON(`/api/breakdown?${kind}=${encodeURIComponent(id)}`);
    if (state.page !== kind || state.arg !== id) return;
    const groups = kind === "service"
      ? [["methods", "byMethod", "method"], ["nodes", "byNode", "node"], ["callers", "byCaller", "caller"], ["codes", "byCode", "code"]]
      : [["methods", "byMethod", "method"], ["callers", "byCaller", "caller"], ["codes", "byCode", "code"]];
    const el = document.getElementById("breakdown");
    if (!el) return;
    el.innerHTML = groups.map(([key, title, col]) => `
      <section class="card"><h2>${L(title)}</h2><div class="body flush">${breakdownTable(data[key], col, key)}</div></section>`).join("");
  }
  function breakdownTable(rows, col, key) {
    if (!rows.length) return `<div class="empty">${L("noTraffic")}</div>`;
    const name = (r) => key === "nodes" ? link("node", r.name) : key === "codes" ? badge(r.name === "OK" ? "ok" : "critical").replace(/>[^<]*<\/span><\/span>$/, ">") + esc(r.name) : esc(r.name);
    return `<table class="data"><thead><tr><th>${L(col)}</th><th class="num">${L("qps")}</th><th class="num">${L("errorRate")}</th>
      <th class="num">P50</th><th class="num">P99</th><th class="num">${L("total")}</th><th class="num">In / Out</th></tr></thead><tbody>${rows.map((r) => `
      <tr><td class="name">${key === "codes" ? esc(r.name) : name(r)}</td><td class="num">${fmtQps(r.qps)}</td><td class="num ${errClass(r.error_share)}">${fmtPct(r.error_share)}</td>
      <td class="num">${fmtMs(r.p50_ms)}</td><td class="num">${fmtMs(r.p99_ms)}</td><td class="num">${fmtInt(r.requests_total)}</td>
      <td class="num note">${fmtBytes(r.bytes_in)} / ${fmtBytes(r.bytes_out)}</td></tr>`).join("")}</tbody></table>`;
  }

  // ---------------------------------------------------------------- charts
  const PALETTE = ["#2e6bd1", "#12a150", "#d98a00", "#8b5cf6", "#e0457b", "#0891b2", "#65a30d", "#b45309"];
  async function loadCharts() {
    const kind = state.page, id = state.arg;
    const by = kind === "service" ? "node" : "service";
    const url = `/api/traffic?${kind}=${encodeURIComponent(id)}&since=${state.range}&by=${by}`;
    let data;
    try { data = await getJSON(url); } catch (e) { return; }
    if (state.page !== kind || state.arg !== id) return;
    const pts = data.points;
    const names = [...new Set(pts.flatMap((p) => Object.keys(p.series || {})))].sort();
    const span = data.until - data.since;
    const frame = { span, step: data.step, since: data.since, until: data.until };
    lineChart("chart-qps", names.map((n, i) => ({ name: by === "service" ? shortService(n) : n, color: PALETTE[i % PALETTE.length],
      values: pts.map((p) => [p.t, p.series && p.series[n] ? p.series[n].qps : 0]) })), { fmt: (v) => fmtQps(v) + "/s", stacked: true, ...frame });
    lineChart("chart-errors", [{ name: Lplain("errorShare"), color: "#d92d20", values: pts.map((p) => [p.t, p.requests ? p.error_share : null]) }], { fmt: fmtPct, min1: 0.01, ...frame });
    // P50 and P99 each on their own axis: on a shared one the P99 flattens the P50 to zero.
    lineChart("chart-p50", [{ name: "P50", color: "#2e6bd1", values: pts.map((p) => [p.t, p.p50_ms]) }], { fmt: fmtMs, ...frame });
    lineChart("chart-p99", [{ name: "P99", color: "#d98a00", values: pts.map((p) => [p.t, p.p99_ms]) }], { fmt: fmtMs, ...frame });
  }
  let overviewChartTimer = null;
  function startOverviewChart() {
    const load = async () => {
      if (state.page !== "overview") { clearInterval(overviewChartTimer); return; }
      let data;
      try { data = await getJSON("/api/traffic?since=15m&step=10s&by=service"); } catch (e) { return; }
      const pts = data.points;
      const names = [...new Set(pts.flatMap((p) => Object.keys(p.series || {})))].sort();
      lineChart("overview-chart", names.map((n, i) => ({ name: shortService(n), color: PALETTE[i % PALETTE.length],
        values: pts.map((p) => [p.t, p.series && p.series[n] ? p.series[n].qps : 0]) })), { fmt: (v) => fmtQps(v) + "/s", span: 900, step: data.step, since: data.since, until: data.until, stacked: true, height: 150 });
    };
    clearInterval(overviewChartTimer);
    load();
    overviewChartTimer = setInterval(load, 5000);
  }

  function lineChart(id, series, opts) {
    const el = document.getElementById(id);
    if (!el) return;
    const W = Math.max(320, Math.round(el.clientWidth || 560)), H = opts.height || 190, L0 = 56, R0 = 12, T0 = 10, B0 = 24;
    const all = series.flatMap((s) => s.values.map((v) => v[0]));
    if (!all.length) { el.innerHTML = `<div class="empty">${L("noTraffic")}</div>`; return; }
    const x0 = opts.since !== undefined ? Math.min(opts.since, ...all) : Math.min(...all);
    const x1 = opts.until !== undefined ? Math.max(opts.until, ...all) : Math.max(...all);
    // Stacked series: each line sits on the sum of those before it.
    let drawn = series;
    if (opts.stacked && series.length > 1) {
      const base = new Map();
      drawn = series.map((s) => ({ ...s, values: s.values.map(([t, v]) => { const b = base.get(t) || 0; base.set(t, b + (v || 0)); return [t, b + (v || 0), v, b]; }) }));
    }
    let ymax = Math.max(opts.min1 || 0, ...drawn.flatMap((s) => s.values.map((v) => v[1] || 0)));
    if (!ymax) ymax = 1;
    ymax = niceCeil(ymax / 4) * 4;
    const sx = (t) => L0 + ((t - x0) / Math.max(1, x1 - x0)) * (W - L0 - R0);
    const sy = (v) => T0 + (1 - v / ymax) * (H - T0 - B0);
    const grid = [];
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4, y = sy(v);
      grid.push(`<line class="grid-line" x1="${L0}" x2="${W - R0}" y1="${y}" y2="${y}"/><text class="axis" x="${L0 - 6}" y="${y + 3.5}" text-anchor="end">${v ? opts.fmt(v) : "0"}</text>`);
    }
    // Ticks at round times (every 1, 2, 5, 10, 15, 30 min, 1, 3, 6, 12 h, 1 d of local time),
    // evenly spaced; the time zone at the end of the axis.
    const tz = tzName();
    const tzW = tz.length * 6 + 8;
    const room = Math.max(1, Math.floor((W - L0 - R0 - tzW) / 70));
    const tickStep = TICK_STEPS.find((u) => (x1 - x0) / u <= room) || TICK_STEPS[TICK_STEPS.length - 1];
    const offset = -new Date(x0 * 1000).getTimezoneOffset() * 60;
    for (let t = Math.ceil((x0 + offset) / tickStep) * tickStep - offset; t <= x1; t += tickStep) {
      if (sx(t) + 18 > W - R0 - tzW) break;
      grid.push(`<line class="grid-line tick" x1="${sx(t)}" x2="${sx(t)}" y1="${H - B0}" y2="${H - B0 + 4}"/><text class="axis tick" data-t="${t}" x="${sx(t)}" y="${H - 6}" text-anchor="middle">${fmtTime(new Date(t * 1000), (x1 - x0) > 86400)}</text>`);
    }
    grid.push(`<text class="axis tz" x="${W - R0}" y="${H - 6}" text-anchor="end">${tz}</text>`);
    const paths = drawn.map((s) => {
      const runs = segments(s.values, opts.step);
      if (!runs.length) return "";
      // One sub-path per run of points with data: no line across a window without any.
      const line = runs.map((pts) => pts.map((v, i) => `${i ? "L" : "M"}${sx(v[0]).toFixed(1)},${sy(v[1]).toFixed(1)}`).join("")).join("");
      const area = runs.map((pts) => {
        const top = pts.map((v, i) => `${i ? "L" : "M"}${sx(v[0]).toFixed(1)},${sy(v[1]).toFixed(1)}`).join("");
        return opts.stacked
          ? top + pts.slice().reverse().map((v) => `L${sx(v[0]).toFixed(1)},${sy(v[3] || 0).toFixed(1)}`).join("") + "Z"
          : top + `L${sx(pts[pts.length - 1][0]).toFixed(1)},${sy(0)}L${sx(pts[0][0]).toFixed(1)},${sy(0)}Z`;
      }).join("");
      // A value with no neighbour (one window of traffic) is a dot: a one-point path draws nothing.
      const dots = s.values.map((v, i) => {
        const alone = v[1] !== null && v[1] !== undefined
          && [s.values[i - 1], s.values[i + 1]].every((n) => !n || n[1] === null || n[1] === undefined);
        return alone ? `<circle cx="${sx(v[0]).toFixed(1)}" cy="${sy(v[1]).toFixed(1)}" r="3" fill="${s.color}"/>` : "";
      }).join("");
      return `<path class="area" d="${area}" fill="${s.color}"/><path class="series" d="${line}" stroke="${s.color}"/>${dots}`;
    }).join("");
    const legendRow = series.length > 1 || opts.stacked
      ? `<div class="legend-row">${series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join("")}</div>` : "";
    el.innerHTML = `${legendRow}<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${grid.join("")}${paths}
      <line class="hover-line" x1="0" x2="0" y1="${T0}" y2="${H - B0}" visibility="hidden"/><rect x="${L0}" y="${T0}" width="${W - L0 - R0}" height="${H - T0 - B0}" fill="transparent"/></svg>`;
    const svg = el.querySelector("svg"), hover = el.querySelector(".hover-line"), tip = document.getElementById("tooltip");
    const times = series[0].values.map((v) => v[0]);
    svg.addEventListener("mousemove", (ev) => {
      const box = svg.getBoundingClientRect();
      const x = ((ev.clientX - box.left) / box.width) * W;
      const t = x0 + ((x - L0) / (W - L0 - R0)) * (x1 - x0);
      let best = 0;
      times.forEach((u, i) => { if (Math.abs(u - t) < Math.abs(times[best] - t)) best = i; });
      hover.setAttribute("x1", sx(times[best])); hover.setAttribute("x2", sx(times[best]));
      hover.setAttribute("visibility", "visible");
      tip.hidden = false;
      tip.style.left = ev.clientX + 14 + "px"; tip.style.top = ev.clientY + 10 + "px";
      tip.innerHTML = `<div class="t">${fmtWhen(new Date(times[best] * 1000).toISOString())}</div>` +
        series.map((s) => `<div><i style="background:${s.color}"></i>${esc(s.name)}: <b>${s.values[best][1] === null || s.values[best][1] === undefined ? "–" : opts.fmt(s.values[best][1])}</b></div>`).join("");
    });
    svg.addEventListener("mouseleave", () => { hover.setAttribute("visibility", "hidden"); tip.hidden = true; });
  }
  const TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400];
  // Runs of points that have a value and follow each other within a step and a half.
  function segments(values, step) {
    const runs = [];
    let run = [];
    let last = null;
    for (const v of values) {
      const has = v[1] !== null && v[1] !== undefined;
      if (!has || (last !== null && step && v[0] - last > step * 1.5)) {
        if (run.length) runs.push(run);
        run = [];
      }
      if (has) { run.push(v); last = v[0]; } else last = null;
    }
    if (run.length) runs.push(run);
    return runs;
  }
  window.powerbusCharts = { lineChart, segments };
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    const m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  // ---------------------------------------------------------------- language toggle
  const MODES = ["lang-both", "lang-zh", "lang-en"];
  document.body.className = localStorage.getItem("powerbus.lang") || "lang-both";
  document.getElementById("lang").addEventListener("click", () => {
    const next = MODES[(MODES.indexOf(document.body.className) + 1) % MODES.length];
    document.body.className = next;
    localStorage.setItem("powerbus.lang", next);
    route();
  });

  // ---------------------------------------------------------------- signed-in user
  // Shown with a log-out button when logged in; nothing in the loopback development mode.
  async function showUser() {
    const me = await getJSON("/api/session").catch(() => null);
    const box = document.getElementById("user");
    if (!me || me.credential !== "session" || !box) return;
    box.innerHTML = `<span class="name">${esc(me.user)}</span><span class="role">${esc(me.role)}</span>
      <button type="button" id="logout"><span class="zh">退出</span><span class="en">Log out</span></button>`;
    box.dataset.user = me.user;
    box.hidden = false;
    // A viewer's action buttons would only be refused (403): app.css hides them.
    document.body.dataset.role = me.role;
    document.getElementById("logout").addEventListener("click", async () => {
      await fetch("/logout", { method: "POST", headers: { "X-Powerbus-Action": "1" }, cache: "no-store" });
      location.assign("/login");
    });
  }

  setLive("connecting");
  route();
  loadOnce();
  connect();
  showUser();
})();
