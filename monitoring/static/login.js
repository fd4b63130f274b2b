// The login page: posts the form as JSON with X-Powerbus-Action (the bus's CSRF guard
// asks it of every POST), then goes where the dashboard sent us from (a local path only).
(() => {
  "use strict";
  const MODES = ["lang-both", "lang-zh", "lang-en"];
  document.body.className = localStorage.getItem("powerbus.lang") || "lang-both";
  document.getElementById("lang").addEventListener("click", () => {
    const next = MODES[(MODES.indexOf(document.body.className) + 1) % MODES.length];
    document.body.className = next;
    localStorage.setItem("powerbus.lang", next);
  });

  const ERRORS = {
    401: ["用户名或密码错误", "Wrong user name or password"],
    429: ["尝试次数过多，请稍后再试", "Too many attempts; try again later"],
  };
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  // The server never sees a URL's #fragment (the dashboard's page); a redirect keeps it on
  // ours, so it is put back on the way out.
  const wanted = new URLSearchParams(location.search).get("next") || "/";
  const local = wanted.startsWith("/") && !wanted.startsWith("//") ? wanted : "/";
  const next = local.includes("#") ? local : local + location.hash;

  function show(status, detail) {
    const t = ERRORS[status] || ["登录失败", `Login failed: ${detail || "HTTP " + status}`];
    error.innerHTML = "";
    for (const [cls, text] of [["zh", t[0]], ["en", t[1]]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      error.appendChild(span);
    }
    error.dataset.status = String(status);
    error.hidden = false;
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = document.getElementById("login-submit");
    button.disabled = true;
    try {
      const r = await fetch("/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Powerbus-Action": "1" },
        body: JSON.stringify({ name: form.name.value, password: form.password.value, next }),
        cache: "no-store",
      });
      const body = await r.json().catch(() => ({}));
      if (r.ok) {
        location.assign(body.next || next);
        return;
      }
      show(r.status, body.error);
      form.password.value = "";
      form.password.focus();
    } catch (e) {
      show(0, String(e));
    } finally {
      button.disabled = false;
    }
  });
})();
