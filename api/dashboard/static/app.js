// pmo-ledger dashboard: vanilla JavaScript, no dependencies, no build step.
// Every figure comes from the JSON API with the key the user typed; the key lives in
// sessionStorage only (never in a URL, never in a cookie). The page's own state (panel,
// as_of, valid_at, the selected project or program, the table's filters) lives in the URL's
// hash, so a view can be shared; the key is never part of it.
"use strict";
(() => {
  const KEY = "pmo-ledger.api-key";
  const STATES = ["proposed", "approved", "rejected", "active", "on_hold", "completed", "cancelled"];
  const HEALTH = ["green", "amber", "red", "unknown"];
  const SORTS = ["project_id", "name", "state", "priority", "planned_start", "planned_finish",
    "approved_budget", "actual_cost", "portfolio_id"];
  const FILTERS = ["portfolio", "program", "state", "health", "manager", "q"];
  const PAGE = 25;
  const $ = (sel, root = document) => root.querySelector(sel);

  let roles = new Set();
  let state = readHash();
  // The hash this page last wrote or adopted. Another one in the address bar is a
  // navigation (a shared link opened in this tab) whose hashchange has not run yet:
  // writing ours over it would lose the instant the link asked for.
  let ownHash = location.hash;
  let validAt = { supported: false, format: "date-time" };
  let storeMax = 0;
  let lastSeq = null;
  let streamCtl = null;
  let renderToken = 0;
  let cursors = [null];     // the project table's pages: cursors of the pages seen so far
  let auditCursors = [null];
  let rejectCursors = [null];

  // -- small helpers ------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }
  const enc = encodeURIComponent;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Money stays a decimal string: only digits are grouped, nothing is rounded.
  function money(v) {
    if (v === null || v === undefined) return "n/a";
    const neg = v.startsWith("-");
    const [i, f] = v.replace("-", "").split(".");
    return (neg ? "-" : "") + i.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (f === undefined ? "" : "." + f);
  }
  const ratio = (x) => (x === null || x === undefined ? "n/a" : String(x));
  // ISO instants compared as text once their fraction has six digits (Python omits a zero one).
  function isoKey(t) {
    const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(t || "");
    return m ? m[1] + (m[2] || ".").padEnd(7, "0") + m[3] : t;
  }
  const shortType = (t) => t.replace(/^pmo\.(project|portfolio|program|manager)\./, "$1 ");

  function badge(colour) {
    const c = colour || "unknown";
    return h("span", { class: `badge h-${c}` }, c);
  }
  function kpiWord(name, x) {
    if (x === null || x === undefined) return h("span", { class: "kpi" }, "n/a");
    const good = x >= 1;
    const word = name === "cpi" ? (good ? "within cost" : "over cost") : (good ? "on schedule" : "behind schedule");
    return h("span", { class: `kpi ${good ? "good" : "bad"}` }, h("b", { "data-field": name }, ratio(x)), ` (${word})`);
  }
  function quarantine(view) {
    return view && view.quarantined ? h("span", { class: "badge quarantined" }, "quarantined") : null;
  }

  // -- the URL's hash -----------------------------------------------------------------

  function readHash() {
    return Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  }
  function hashOf(st) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(st)) if (v) p.set(k, v);
    return "#" + p.toString();
  }
  function writeHash() {
    if (location.hash !== ownHash) return; // the pending hashchange adopts the new one
    const target = hashOf(state);
    if (location.hash !== target) history.replaceState(null, "", target);
    ownHash = location.hash;
  }
  function link(changes, text, attrs = {}) {
    return h("a", { href: hashOf({ ...state, ...changes }), ...attrs }, text);
  }

  // -- the API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || `HTTP ${status}`);
      this.status = status;
    }
  }
  async function api(path, params = {}, init = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    }
    const r = await fetch(url, { ...init, cache: "no-store",
      headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY), ...(init.headers || {}) } });
    const body = await r.json().catch(() => null);
    if (r.status === 401) signOut("This key was refused (401): sign in again.");
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }
  // The time control's parameters for view routes: as_of for auditors, valid_at if accepted.
  function timeParams() {
    const p = {};
    if (state.as_of && roles.has("auditor")) p.as_of = state.as_of;
    if (state.valid_at && validAt.supported) {
      p.valid_at = validAt.format === "date" ? state.valid_at : `${state.valid_at}T23:59:59.999999Z`;
    }
    return p;
  }
  async function allPages(path, params, max = 20) {
    let items = [], cursor = null;
    for (let n = 0; n < max; n++) {
      const page = await api(path, { ...params, cursor });
      items = items.concat(page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return items;
  }
  // Whether the API takes valid_at (another part of the service may add it): its OpenAPI says.
  async function detectValidAt() {
    try {
      const r = await fetch("/openapi.json", { cache: "no-store" });
      if (!r.ok) return;
      const doc = await r.json();
      const op = ((doc.paths || {})["/v1/portfolios/{portfolio_id}"] || {}).get || {};
      const param = (op.parameters || []).find((p) => p.name === "valid_at");
      if (!param) return;
      const schema = param.schema || {};
      const any = [schema, ...(schema.anyOf || [])];
      validAt = { supported: true, format: any.some((x) => x.format === "date") ? "date" : "date-time" };
    } catch (e) { /* no OpenAPI document: the field stays hidden */ }
  }

  // -- panels -------------------------------------------------------------------------
  // Each panel has controls (built when the panel opens, kept while it refreshes, so typing
  // is never interrupted) and a body (rebuilt on every refresh).

  function moneyBars(view, fields) {
    const max = Math.max(1, ...fields.map(([f]) => Number(view[f] || 0)));
    return h("dl", { class: "bars" }, fields.map(([f, label]) => [
      h("dt", {}, label),
      h("dd", {},
        h("span", { class: `bar b-${f}`, style: null, "aria-hidden": "true",
          "data-w": Math.round((Number(view[f] || 0) / max) * 100) }),
        h("span", { class: "num", "data-field": f, "data-value": view[f] }, money(view[f]))),
    ]));
  }
  function sizeBars(root) {
    // Widths set through CSSOM (the page's CSP forbids inline style attributes).
    for (const b of root.querySelectorAll(".bar[data-w]")) b.style.width = b.dataset.w + "%";
  }
  function counts(title, obj, keys, asBadge) {
    return h("table", { class: "counts" }, h("caption", {}, title),
      h("tbody", {}, keys.map((k) => h("tr", {},
        h("th", { scope: "row" }, asBadge ? badge(k) : k.replace("_", " ")),
        h("td", { "data-field": `${title.includes("health") ? "health" : "state"}-${k}` }, obj[k] ?? 0)))));
  }
  function rollupCard(view, kind, id, name, extra) {
    const fields = kind === "portfolio"
      ? [["budget_envelope", "Envelope"], ["approved_budget", "Approved"], ["actual_cost", "Actual"],
        ["estimate_at_completion", "EAC"]]
      : [["approved_budget", "Approved"], ["actual_cost", "Actual"], ["estimate_at_completion", "EAC"]];
    return h("article", { class: "card", [`data-${kind}`]: id },
      h("h2", {}, name, " ", h("small", {}, id), " ", quarantine(view)),
      extra,
      moneyBars(view, fields),
      h("p", { class: "kpis" }, "CPI ", kpiWord("cpi", view.cpi), " · SPI ", kpiWord("spi", view.spi)),
      h("div", { class: "split" },
        counts("Projects by state", view.projects_by_state || {}, STATES, false),
        counts("Live projects by health", view.projects_by_health || {}, HEALTH, true)));
  }

  const panels = {
    portfolios: {
      title: "Portfolios",
      async body() {
        const list = await allPages("/v1/portfolios", { limit: 500 }, 5);
        const tp = timeParams();
        let items = list;
        if (Object.keys(tp).length) {
          items = (await Promise.all(list.map((p) => api(`/v1/portfolios/${enc(p.portfolio_id)}`, tp)
            .catch((e) => { if (e.status === 404) return null; throw e; })))).filter(Boolean);
        }
        if (!items.length) return h("p", {}, "No portfolio was recorded by then.");
        return h("div", { class: "cards" }, items.map((p) => rollupCard(p, "portfolio", p.portfolio_id, p.name,
          h("p", { class: "meta" }, `${p.pmo_type} PMO · ${p.currency} · owner ${p.owner ?? "n/a"} · `,
            link({ panel: "projects", portfolio: p.portfolio_id, program: "" }, `${p.project_count ?? ""} projects`)))));
      },
    },

    projects: {
      title: "Projects",
      controls() {
        const form = h("form", { class: "filters", "aria-label": "Filter and sort projects" });
        const field = (name, label, input) => {
          input.id = `f-${name}`;
          return h("span", {}, h("label", { for: input.id }, label), " ", input);
        };
        const select = (name, values) => h("select", { name }, h("option", { value: "" }, "any"),
          values.map((v) => h("option", { value: v, selected: state[name] === v }, v.replace("_", " "))));
        form.append(
          field("portfolio", "Portfolio", h("input", { name: "portfolio", value: state.portfolio || "", size: 12 })),
          field("program", "Program", h("input", { name: "program", value: state.program || "", size: 12 })),
          field("state", "State", select("state", STATES)),
          field("health", "Health", select("health", HEALTH)),
          field("manager", "Manager", h("input", { name: "manager", value: state.manager || "", size: 8 })),
          field("q", "Search", h("input", { name: "q", type: "search", value: state.q || "", size: 14 })),
          field("sort", "Sort by", h("select", { name: "sort" }, SORTS.map((v) =>
            h("option", { value: v, selected: (state.sort || "project_id").replace("-", "") === v }, v.replace("_", " "))))),
          h("label", {}, h("input", { type: "checkbox", name: "desc", checked: (state.sort || "").startsWith("-") }), " descending"),
          h("button", { type: "submit" }, "Apply"));
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          const data = new FormData(form);
          for (const f of FILTERS) state[f] = (data.get(f) || "").trim();
          state.sort = (data.get("desc") ? "-" : "") + data.get("sort");
          if (state.sort === "project_id") state.sort = "";
          cursors = [null];
          writeHash();
          refresh();
        });
        return form;
      },
      async body() {
        const page = cursors.length - 1;
        const params = { limit: PAGE, sort: state.sort || "project_id", cursor: cursors[page], ...timeParams() };
        for (const f of FILTERS) params[f] = state[f];
        // At a past instant the list route has no planned_finish order (422): say so, use the id.
        const noFinish = (params.as_of || params.valid_at) && params.sort.replace("-", "") === "planned_finish";
        if (noFinish) params.sort = "project_id";
        const data = await api("/v1/projects", params);
        const wrap = h("div", {});
        if (noFinish) wrap.append(h("p", { class: "note" }, "Sorting by planned finish is not offered at a past instant: sorted by project id."));
        const cols = ["Project", "Name", "Portfolio", "Program", "State", "Health", "Manager", "Approved", "Actual", "EAC", "CPI", "SPI"];
        wrap.append(h("table", { class: "grid", id: "project-table" },
          h("caption", {}, `Projects, page ${page + 1} (${data.items.length} shown)`),
          h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, data.items.map((p) => h("tr", { "data-project": p.project_id },
            h("td", {}, link({ panel: "project", project: p.project_id }, p.project_id)),
            h("td", {}, p.name, " ", quarantine(p)),
            h("td", {}, p.portfolio_id),
            h("td", {}, p.program_id ? link({ panel: "program", program_id: p.program_id }, p.program_id) : "n/a"),
            h("td", {}, (p.state || "").replace("_", " ")),
            h("td", {}, badge(p.health && p.health.overall)),
            h("td", {}, p.manager_id || "n/a"),
            h("td", { class: "n", "data-field": "approved_budget" }, money(p.approved_budget)),
            h("td", { class: "n", "data-field": "actual_cost" }, money(p.actual_cost)),
            h("td", { class: "n" }, money(p.estimate_at_completion)),
            h("td", { class: "n" }, ratio(p.cpi)),
            h("td", { class: "n" }, ratio(p.spi)))))));
        const pager = h("div", { class: "pager" },
          h("button", { type: "button", disabled: page === 0, onclick: () => { cursors = [null]; refresh(); } }, "First page"),
          h("button", { type: "button", disabled: page === 0, onclick: () => { cursors.pop(); refresh(); } }, "Previous page"),
          h("button", { type: "button", disabled: !data.next_cursor, onclick: () => { cursors.push(data.next_cursor); refresh(); } }, "Next page"));
        wrap.append(pager);
        return wrap;
      },
    },

    project: {
      title: "Project",
      controls() { return idForm("project", "Project id", "PRJ-001"); },
      async body() {
        if (!state.project) return h("p", {}, "Choose a project in the project table, or type its id.");
        const tp = timeParams();
        const [p, history] = await Promise.all([
          api(`/v1/projects/${enc(state.project)}`, tp),
          roles.has("auditor") ? allPages(`/v1/projects/${enc(state.project)}/history`, { limit: 500 }) : null]);
        const events = history && state.as_of
          ? history.filter((e) => isoKey(e.recorded_at) <= isoKey(state.as_of)) : history;
        return projectPage(p, events);
      },
    },

    program: {
      title: "Programs",
      controls() { return idForm("program_id", "Program id", "PRG-..."); },
      async body() {
        if (!state.program_id) {
          const items = await allPages("/v1/projects", { limit: 500, sort: "portfolio_id" }, 2);
          const ids = [...new Set(items.map((p) => p.program_id).filter(Boolean))].sort();
          return h("div", {}, h("p", {}, "Choose a program:"),
            h("ul", { class: "links" }, ids.map((id) => h("li", {}, link({ program_id: id }, id)))));
        }
        const g = await api(`/v1/programs/${enc(state.program_id)}`, timeParams());
        return h("div", {}, rollupCard(g, "program", g.program_id, g.name || g.program_id,
          h("p", { class: "meta" }, `portfolio ${g.portfolio_id} · manager ${g.manager_id || "n/a"}`)),
          h("h3", {}, "Projects"),
          h("ul", { class: "links" }, (g.projects || []).map((id) => h("li", {}, link({ panel: "project", project: id }, id)))));
      },
    },

    managers: {
      title: "Managers",
      async body() {
        let items = await allPages("/v1/managers", { limit: 500 }, 5);
        const tp = timeParams();
        if (Object.keys(tp).length) {
          items = (await Promise.all(items.map((m) => api(`/v1/managers/${enc(m.manager_id)}`, tp)
            .catch((e) => { if (e.status === 404) return null; throw e; })))).filter(Boolean);
        }
        return h("table", { class: "grid", id: "manager-table" },
          h("caption", {}, "Managers: active projects against capacity"),
          h("thead", {}, h("tr", {}, ["Manager", "Name", "Workload", "Active", "Capacity", "On-time rate", "Budget variance", "In pool"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, items.map((m) => {
            const over = m.active_projects > m.capacity;
            return h("tr", { "data-manager": m.manager_id },
              h("td", {}, link({ panel: "projects", manager: m.manager_id, portfolio: "", program: "" }, m.manager_id)),
              h("td", {}, m.name),
              h("td", {}, h("meter", { min: 0, max: Math.max(m.capacity, m.active_projects, 1), value: m.active_projects,
                "aria-label": `${m.active_projects} of ${m.capacity}` }),
              " ", h("span", { class: over ? "badge h-red" : "badge h-green" }, over ? "over capacity" : "within capacity")),
              h("td", { class: "n", "data-field": "active_projects" }, m.active_projects),
              h("td", { class: "n" }, m.capacity),
              h("td", { class: "n" }, ratio(m.on_time_rate)),
              h("td", { class: "n" }, money(m.budget_variance)),
              h("td", {}, m.in_pool ? "yes" : "no"));
          })));
      },
    },

    audit: {
      title: "Audit trail",
      role: "auditor",
      controls() {
        const out = h("output", { id: "verify-out", role: "status" });
        const form = h("form", { class: "filters", "aria-label": "Filter the audit trail" },
          h("label", {}, "Aggregate ", h("input", { name: "aggregate", size: 14, value: state.aggregate || "" })),
          h("label", {}, "Type ", h("input", { name: "type", size: 22, value: state.type || "" })),
          h("button", { type: "submit" }, "Apply"),
          h("button", { type: "button", id: "verify", onclick: async () => {
            out.textContent = "verifying…";
            try {
              const v = await api("/v1/audit/verify");
              out.className = v.ok ? "badge h-green" : "badge h-red";
              out.textContent = v.ok ? `Chain intact: ${v.checked} events checked`
                : `Chain broken at position ${v.broken_at}`;
            } catch (e) { out.textContent = `verify failed: ${e.message}`; }
          } }, "Verify the hash chain"), " ", out);
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          const d = new FormData(form);
          state.aggregate = (d.get("aggregate") || "").trim();
          state.type = (d.get("type") || "").trim();
          auditCursors = [null];
          writeHash();
          refresh();
        });
        return form;
      },
      async body() {
        const page = auditCursors.length - 1;
        const data = await api("/v1/audit", { limit: 50, cursor: auditCursors[page],
          aggregate: state.aggregate, type: state.type, until: state.as_of });
        return h("div", {}, h("table", { class: "grid", id: "audit-table" },
          h("caption", {}, `Audit trail, page ${page + 1}${state.as_of ? " (recorded up to as_of)" : ""}`),
          h("thead", {}, h("tr", {}, ["Position", "Aggregate", "Version", "Type", "Time", "Recorded at", "Actor", "Source", "Hash"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, data.items.map((e) => h("tr", {},
            h("td", { class: "n" }, e.position), h("td", {}, e.aggregate_id), h("td", { class: "n" }, e.version),
            h("td", {}, shortType(e.type)), h("td", {}, e.time), h("td", {}, e.recorded_at),
            h("td", {}, e.actor || ""), h("td", {}, e.source || ""),
            h("td", {}, h("code", { title: `previous ${e.prev_hash}` }, (e.hash || "").slice(0, 12))))))),
        pager(auditCursors, data.next_cursor));
      },
    },

    rejections: {
      title: "Rejections",
      role: "auditor",
      async body() {
        const page = rejectCursors.length - 1;
        const data = await api("/v1/rejections", { limit: 50, cursor: rejectCursors[page] });
        const c = data.counts || {};
        return h("div", {}, h("p", {}, `Rejected by the rules: ${c.rejected ?? "?"} · dead-lettered (malformed): ${c.dlq ?? "?"}`),
          h("table", { class: "grid", id: "rejection-table" },
            h("caption", {}, `Refused inbound messages, page ${page + 1}`),
            h("thead", {}, h("tr", {}, ["#", "Kind", "Received", "Source", "Event id", "Type", "Subject", "Reason"].map((x) => h("th", { scope: "col" }, x)))),
            h("tbody", {}, data.items.map((r) => h("tr", {},
              h("td", { class: "n" }, r.id), h("td", {}, r.kind), h("td", {}, r.received_at || ""),
              h("td", {}, r.source || ""), h("td", {}, r.event_id || ""), h("td", {}, r.type ? shortType(r.type) : ""),
              h("td", {}, r.subject || ""), h("td", { class: "reason" }, r.reason))))),
          pager(rejectCursors, data.next_cursor));
      },
    },

    status: {
      title: "Projections",
      async body() {
        const data = await api("/v1/projections");
        const wrap = h("div", {}, h("table", { class: "grid", id: "status-table" },
          h("caption", {}, `Projections (event store at position ${storeMax || "?"})`),
          h("thead", {}, h("tr", {}, ["Projection", "State", "Position", "Lag (events)", "Last event"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, data.items.map((p) => h("tr", { "data-projection": p.name },
            h("td", {}, p.name),
            h("td", {}, h("span", { class: p.state === "live" ? "badge h-green" : "badge h-amber" }, p.state),
              p.rebuild ? ` ${p.rebuild.position} of ${p.rebuild.head}` : ""),
            h("td", { class: "n" }, p.position), h("td", { class: "n", "data-field": "lag" }, p.lag ?? "n/a"),
            h("td", {}, p.last_event_at || "n/a"))))));
        if (data.pipeline) {
          wrap.append(h("h3", {}, "Pipeline"), h("pre", { class: "pipeline" }, JSON.stringify(data.pipeline, null, 2)));
        }
        return wrap;
      },
    },
  };

  function pager(stack, next) {
    return h("div", { class: "pager" },
      h("button", { type: "button", disabled: stack.length === 1, onclick: () => { stack.splice(1); refresh(); } }, "First page"),
      h("button", { type: "button", disabled: !next, onclick: () => { stack.push(next); refresh(); } }, "Next page"));
  }

  function idForm(name, label, placeholder) {
    const form = h("form", { class: "filters" },
      h("label", {}, label, " ", h("input", { name, value: state[name] || "", placeholder, size: 14 })),
      h("button", { type: "submit" }, "Show"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      state[name] = (new FormData(form).get(name) || "").trim();
      writeHash();
      refresh();
    });
    return form;
  }

  function projectPage(p, events) {
    const kv = (label, value, field) => [h("dt", {}, label), h("dd", field ? { "data-field": field } : {}, value)];
    const statusReports = (events || []).filter((e) => e.type.endsWith("status_reported")).reverse();
    return h("article", { class: "project", "data-project": p.project_id },
      h("h2", {}, p.name, " ", h("small", {}, p.project_id), " ", badge(p.health && p.health.overall), " ", quarantine(p)),
      h("p", { class: "meta" }, `${(p.state || "").replace("_", " ")} · portfolio ${p.portfolio_id} · `,
        p.program_id ? link({ panel: "program", program_id: p.program_id }, `program ${p.program_id}`) : "no program",
        ` · manager ${p.manager_id || "n/a"} · sponsor ${p.sponsor || "n/a"}`, p.as_of ? ` · as of ${p.as_of}` : ""),
      h("div", { class: "split" },
        h("dl", { class: "facts" },
          kv("Approved budget (BAC)", money(p.approved_budget), "approved_budget"),
          kv("Actual cost", money(p.actual_cost), "actual_cost"),
          kv("Estimate at completion", money(p.estimate_at_completion), "estimate_at_completion"),
          kv("Earned value", money(p.earned_value)), kv("Planned value", money(p.planned_value)),
          kv("CPI", kpiWord("cpi", p.cpi)), kv("SPI", kpiWord("spi", p.spi)),
          kv("Complete", `${p.percent_complete ?? 0} %`),
          kv("Planned", `${p.planned_start || "?"} to ${p.planned_finish || "?"} (baseline ${p.baseline_finish || "?"})`),
          kv("Health", h("span", {}, ["scope", "schedule", "budget"].map((k) => [k, " ", badge(p.health && p.health[k]), " "])))),
        burnChart(p, events)),
      h("h3", {}, "Milestones"),
      table(["Milestone", "Due", "Achieved"], (p.milestones || []).map((m) => [m.name, m.due, m.achieved_on || "not yet"])),
      h("h3", {}, "Open risks"),
      table(["Risk", "Probability", "Impact"], (p.open_risks || []).map((r) => [r.title, ratio(r.probability), r.impact])),
      events ? [
        h("h3", {}, "Status reports"),
        table(["Time", "Overall", "Complete", "Summary"], statusReports.map((e) =>
          [e.time, badge(e.data.overall), `${e.data.percent_complete} %`, e.data.summary || ""])),
        h("h3", {}, "History"),
        h("ol", { class: "timeline", id: "timeline", tabindex: 0, "aria-label": "History: each event with its time and its recording time" }, events.map((e) => h("li", {},
          h("b", {}, shortType(e.type)), ` #${e.version} · `,
          h("span", {}, "time ", h("time", { datetime: e.time }, e.time)), " · ",
          h("span", {}, "recorded ", h("time", { datetime: e.recorded_at }, e.recorded_at)),
          ` · ${e.actor || "?"} via ${e.source || "?"}`))),
      ] : h("p", { class: "note" }, "History and status reports need the auditor role."));
  }

  function table(cols, rows) {
    if (!rows.length) return h("p", {}, "None.");
    return h("table", { class: "grid" }, h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
  }

  // Cost burn (cumulative recorded cost by day incurred) against planned value (BAC spread
  // linearly from planned start to the baseline finish), as an inline SVG.
  function burnChart(p, events) {
    const bac = Number(p.approved_budget || 0);
    const day = (d) => Date.parse(d.slice(0, 10) + "T00:00:00Z");
    const start = p.planned_start ? day(p.planned_start) : null;
    const finish = p.baseline_finish ? day(p.baseline_finish) : (p.planned_finish ? day(p.planned_finish) : null);
    const costs = (events || []).filter((e) => e.type.endsWith("cost_recorded"))
      .map((e) => [day(e.data.incurred_on || e.time), Number(e.data.amount)]).sort((a, b) => a[0] - b[0]);
    if (start === null || finish === null) return h("p", {}, "No planned dates: no cost chart.");
    const last = costs.length ? costs[costs.length - 1][0] : start;
    const x0 = Math.min(start, costs.length ? costs[0][0] : start);
    const x1 = Math.max(finish, last, x0 + 86400000);
    let total = 0;
    const steps = costs.map(([t, a]) => [t, (total += a)]);
    const y1 = Math.max(bac, total, Number(p.estimate_at_completion || 0), 1);
    const W = 420, H = 180, L = 8, B = 20;
    const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - 2 * L);
    const Y = (v) => H - B - (v / y1) * (H - B - 10);
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
      "aria-label": `Cost burn: ${money(p.actual_cost)} spent against a planned value of ${money(p.planned_value)} today, budget ${money(p.approved_budget)}` },
    s("title", {}, "Cost burn against planned value"),
    s("line", { x1: L, y1: H - B, x2: W - L, y2: H - B, class: "axis" }),
    s("polyline", { class: "pv", points: `${X(x0)},${Y(0)} ${X(start)},${Y(0)} ${X(finish)},${Y(bac)} ${X(x1)},${Y(bac)}` }),
    s("line", { class: "bac", x1: L, y1: Y(bac), x2: W - L, y2: Y(bac) }),
    s("text", { x: L, y: H - 4 }, new Date(x0).toISOString().slice(0, 10)),
    s("text", { x: W - L, y: H - 4, "text-anchor": "end" }, new Date(x1).toISOString().slice(0, 10)));
    const today = Date.now();
    if (today >= x0 && today <= x1) svg.append(s("line", { class: "today", x1: X(today), y1: 10, x2: X(today), y2: H - B }));
    if (steps.length) {
      let pts = `${X(steps[0][0])},${Y(0)}`;
      let prev = 0;
      for (const [t, v] of steps) { pts += ` ${X(t)},${Y(prev)} ${X(t)},${Y(v)}`; prev = v; }
      svg.append(s("polyline", { class: "ac", points: pts }));
    }
    return h("figure", { class: "chart" }, svg, h("figcaption", {},
      h("span", { class: "key ac" }, "— actual cost (recorded)"), " ", h("span", { class: "key pv" }, "— planned value"),
      " ", h("span", { class: "key bac" }, "- - budget"),
      events ? null : h("span", {}, " (cost history needs the auditor role)")));
  }

  // -- the shell: sign-in, tabs, time control, refresh ----------------------------------

  async function refresh(rebuildControls = false) {
    // Own keys only: a shared URL's #panel=constructor (or toString, __proto__) names an
    // Object built-in, not a panel, and rendered "panel.body is not a function".
    const known = Object.hasOwn(panels, state.panel || "") && allowed(panels[state.panel]);
    const name = known ? state.panel : "portfolios";
    state.panel = name;
    writeHash();
    const panel = panels[name];
    const root = $("#panel");
    const token = ++renderToken;
    for (const b of document.querySelectorAll("#tabs button")) {
      b.setAttribute("aria-current", b.dataset.panel === name ? "page" : "false");
    }
    if (rebuildControls || root.dataset.panel !== name) {
      root.replaceChildren(h("h2", { class: "panel-title" }, panel.title),
        h("div", { id: "controls" }, panel.controls ? panel.controls() : null), h("div", { id: "body" }));
      root.dataset.panel = name;
    }
    try {
      const body = await panel.body();
      if (token !== renderToken) return;
      sizeBars(body);
      $("#body").replaceChildren(body);
      $("#error").hidden = true;
      document.body.dataset.rendered = String(token);
      performance.mark(`pmo:rendered:${name}`); // read by bench/bench_dashboard.py
    } catch (e) {
      if (token !== renderToken) return;
      showError(e.status === 404 ? `Not found: ${e.message}` : e.message);
      $("#body").replaceChildren();
    }
  }
  function allowed(panel) {
    return panel.role ? roles.has(panel.role) : roles.has("viewer");
  }
  function showError(text) {
    const el = $("#error");
    el.textContent = text;
    el.hidden = false;
  }

  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    let who;
    try {
      who = await api("/v1/whoami");
    } catch (e) {
      if (e.status !== 401) showError(`Sign-in failed: ${e.message}`);
      return;
    }
    roles = new Set(who.roles);
    $("#signin").hidden = true;
    $("#who").hidden = false;
    $("#intro").hidden = true;
    $("#roles").textContent = `Signed in: ${[...roles].sort().join(", ") || "no roles"}`;
    if (!roles.has("viewer")) {
      showError("This key has no role that can read the views (viewer or auditor).");
      return;
    }
    $("#error").hidden = true;
    for (const b of document.querySelectorAll("#tabs button")) b.hidden = b.dataset.role ? !roles.has(b.dataset.role) : false;
    // Nothing here delays the first panel but what it needs: valid_at's support only when
    // the URL asks for a valid_at; the slider's range is set up beside the first render.
    const detecting = detectValidAt().then(() => {
      $("#validat-box").hidden = !validAt.supported;
      $("#validat").value = state.valid_at || "";
    });
    if (state.valid_at) await detecting;
    const timeReady = setUpTime();
    connectStream();
    const first = refresh(true);
    $("#tabs").hidden = false;
    $("#timebar").hidden = false;
    await Promise.all([first, timeReady, detecting]);
    document.body.dataset.ready = "1"; // the tests wait for it
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    if (streamCtl) streamCtl.abort();
    streamCtl = null;
    roles = new Set();
    $("#signin").hidden = false;
    $("#who").hidden = true;
    $("#tabs").hidden = true;
    $("#timebar").hidden = true;
    $("#intro").hidden = false;
    $("#panel").replaceChildren();
    delete $("#panel").dataset.panel;
    delete document.body.dataset.ready;
    if (message) showError(message); else $("#error").hidden = true;
  }

  // The as_of slider runs over stored positions 1..N (N = the store's last: live); each
  // position stands for the instant its event was recorded, read from the audit trail.
  async function setUpTime() {
    const abox = $("#asof-box");
    abox.hidden = !roles.has("auditor");
    if (!roles.has("auditor")) return;
    const status = await api("/v1/projections");
    storeMax = Math.max(0, ...status.items.map((p) => p.position + (p.lag || 0)));
    const slider = $("#asof");
    slider.max = String(Math.max(storeMax, 1));
    if (state.as_of) {
      const at = await api("/v1/audit", { since: state.as_of, limit: 1 }).catch(() => ({ items: [] }));
      const first = at.items[0];
      const pos = !first ? storeMax : (isoKey(first.recorded_at) === isoKey(state.as_of) ? first.position : first.position - 1);
      slider.value = String(Math.max(1, pos));
    } else {
      slider.value = slider.max;
    }
    showAsOf();
  }
  function showAsOf() {
    const text = state.as_of ? `as of ${state.as_of} (event ${$("#asof").value} of ${storeMax})` : "live";
    $("#asof-out").textContent = text;
    $("#asof").setAttribute("aria-valuetext", text); // screen readers say the instant, not a number
  }
  let slideTimer = null;
  async function onSlide() {
    const slider = $("#asof");
    const pos = Number(slider.value);
    if (pos >= storeMax) {
      state.as_of = "";
    } else {
      const page = await api("/v1/audit", { cursor: String(pos - 1), limit: 1 });
      if (!page.items.length || Number(slider.value) !== pos) return;
      state.as_of = page.items[0].recorded_at;
    }
    cursors = [null]; // a page cursor of another instant is not this instant's
    showAsOf();
    writeHash();
    refresh();
  }

  async function connectStream() {
    if (streamCtl) streamCtl.abort();
    const ctl = new AbortController();
    streamCtl = ctl;
    const live = $("#livestate");
    while (!ctl.signal.aborted) {
      try {
        const r = await fetch("/v1/stream", { signal: ctl.signal, cache: "no-store",
          headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY), Accept: "text/event-stream" } });
        if (!r.ok || !r.body) {
          live.textContent = `live updates paused (HTTP ${r.status}); retrying`;
          await sleep(r.status === 429 ? 5000 : 2000);
          continue;
        }
        live.textContent = "live: connected";
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            onFrame(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
        live.textContent = "live updates lost; reconnecting";
      }
      await sleep(500);
    }
  }
  function onFrame(block) {
    let type = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (type !== "views" || !data) return;
    const d = JSON.parse(data);
    const slider = $("#asof");
    const wasLive = !state.as_of;
    storeMax = d.store;
    slider.max = String(Math.max(storeMax, 1));
    if (wasLive) slider.value = slider.max;
    showAsOf();
    $("#livestate").textContent = `live: views at ${d.store}, updated ${new Date().toLocaleTimeString()}`;
    if (lastSeq !== null && d.seq !== lastSeq) liveRefresh();
    lastSeq = d.seq;
  }
  // While events pour in, one refresh at a time, and one more after it if the views moved
  // meanwhile: the panel is never more than one refresh behind, the API never flooded.
  let refreshing = false, again = false;
  async function liveRefresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try { await refresh(); } finally { refreshing = false; }
    if (again) { again = false; liveRefresh(); }
  }

  function start() {
    $("#signin").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $("#key");
      const key = input.value.trim();
      input.value = "";
      if (key) signIn(key);
    });
    $("#signout").addEventListener("click", () => signOut());
    $("#tabs").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-panel]");
      if (!b) return;
      state.panel = b.dataset.panel;
      refresh(true).then(() => $("#main").focus());
    });
    $("#asof").addEventListener("input", () => {
      clearTimeout(slideTimer);
      slideTimer = setTimeout(onSlide, 120);
    });
    $("#live").addEventListener("click", () => {
      state.as_of = "";
      $("#asof").value = $("#asof").max;
      cursors = [null];
      showAsOf();
      refresh();
    });
    $("#validat").addEventListener("change", () => {
      state.valid_at = $("#validat").value;
      cursors = [null];
      refresh();
    });
    $("#validat-clear").addEventListener("click", () => {
      $("#validat").value = "";
      state.valid_at = "";
      cursors = [null];
      refresh();
    });
    window.addEventListener("hashchange", () => {
      ownHash = location.hash;
      const next = readHash();
      if (next.as_of !== state.as_of) {
        state = next;
        setUpTime().then(() => refresh(true));
        return;
      }
      state = next;
      cursors = [null];
      auditCursors = [null];
      rejectCursors = [null];
      refresh(true);
    });
    if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
  }
  start();
})();
