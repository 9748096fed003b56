/* The city dashboard: log in (GraphQL `login`), read `cityStats` for a period, draw it with ECharts, download the
 * month's or quarter's report. Plain JS, no build step. The API decides everything: whose figures a login sees,
 * who may download; this page only shows what it answers. Each chart's element carries the figures it plotted
 * in `data-figures` (JSON), and the page's state is in <body data-state>: the browser test reads both. */
(function () {
  "use strict";

  var TOKEN_KEY = "youthlink.dashboard.token";
  var STAR_NAMES = ["未达星级", "一星", "二星", "三星", "四星", "五星"];
  var COLORS = ["#c8102e", "#2563eb", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  var operations = null; // name -> the operation's text, from overview.graphql
  var charts = {}; // element id -> ECharts instance
  var current = null; // the period shown: {from, to, report, label}

  function $(id) { return document.getElementById(id); }

  function setState(state) { document.body.setAttribute("data-state", state); }

  // ---- the API ----

  function AuthError(message) { this.name = "AuthError"; this.message = message; }
  AuthError.prototype = Object.create(Error.prototype);

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function loadOperations() {
    if (operations) { return Promise.resolve(operations); }
    return fetch("/static/dashboard/overview.graphql", { cache: "no-cache" }).then(function (response) {
      if (!response.ok) { throw new Error("页面文件加载失败（" + response.status + "），请刷新重试"); }
      return response.text();
    }).then(function (text) {
      // One operation per request, exactly as written in the file.
      var found = {};
      text.split(/\n(?=(?:query|mutation) )/).forEach(function (part) {
        var match = /^(?:query|mutation) (\w+)/.exec(part.trim());
        if (match) { found[match[1]] = part.trim(); }
      });
      operations = found;
      return found;
    });
  }

  function gql(name, variables) {
    return loadOperations().then(function (ops) {
      var headers = { "Content-Type": "application/json" };
      if (token()) { headers.Authorization = "Bearer " + token(); }
      return fetch("/graphql", {
        method: "POST", headers: headers,
        body: JSON.stringify({ query: ops[name], operationName: name, variables: variables || {} }),
      });
    }).then(function (response) {
      return response.json().catch(function () {
        throw new Error("服务器暂时无法响应（" + response.status + "），请稍后重试");
      });
    }, function (error) {
      if (error instanceof Error && error.message && error.message.indexOf("页面文件") === 0) { throw error; }
      throw new Error("网络连接失败，请检查网络后重试");
    }).then(function (body) {
      var errors = body.errors || [];
      for (var i = 0; i < errors.length; i++) {
        var code = errors[i].extensions && errors[i].extensions.code;
        if (code === "UNAUTHENTICATED") { throw new AuthError("登录已失效，请重新登录"); }
      }
      if (errors.length) { throw new Error(errors[0].message || "查询失败"); }
      return body.data;
    });
  }

  // ---- views ----

  function show(view) {
    $("login-view").hidden = view !== "login";
    $("overview-view").hidden = view !== "overview";
    $("who").hidden = view !== "overview";
    if (view === "overview") { resizeCharts(); }
  }

  function showLogin(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    disposeCharts();
    current = null;
    show("login");
    var box = $("login-error");
    box.textContent = message || "";
    box.hidden = !message;
    setState(message ? "login-error" : "login");
    $("login-submit").disabled = false;
  }

  function failed(error, where) {
    if (error instanceof AuthError) { showLogin(error.message); return; }
    var box = $(where);
    box.textContent = error.message || String(error);
    box.hidden = false;
    setState(where === "login-error" ? "login-error" : "error");
  }

  // ---- login ----

  function onLogin(event) {
    event.preventDefault();
    var phone = $("phone").value.trim();
    var password = $("password").value;
    if (!phone || !password) { failed(new Error("请输入手机号和密码"), "login-error"); return; }
    $("login-submit").disabled = true;
    $("login-error").hidden = true;
    setState("logging-in");
    gql("DashboardLogin", { input: { phone: phone, password: password } }).then(function (data) {
      var payload = data.login;
      if (payload.errors.length || !payload.token) {
        throw new Error(payload.errors.length ? payload.errors[0].message : "登录失败，请重试");
      }
      sessionStorage.setItem(TOKEN_KEY, payload.token);
      $("password").value = "";
      return enter();
    }).catch(function (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      $("login-submit").disabled = false;
      if (error instanceof AuthError) { error = new Error(error.message); }
      failed(error, "login-error");
    });
  }

  // Who is logged in: the API says whose figures this login sees; the dashboard is for the city's and
  // organizations' admins (a volunteer's own figures are in the phone app).
  function enter() {
    return gql("DashboardViewer").then(function (data) {
      var audience = data.viewer.statsAudience;
      if (audience !== "CITY" && audience !== "ORGANIZATION") {
        showLogin("数据看板仅供市级管理员和组织管理员使用；志愿者请在手机应用中查看自己的服务时长");
        return;
      }
      $("viewer-name").textContent = data.viewer.name + (audience === "CITY" ? " · 全市" : " · 本组织及下级");
      show("overview");
      loadOverview();
    });
  }

  function onLogout() {
    // The API's logout ends every login of the account (on all devices); the page forgets its token either way.
    var had = token();
    var done = function () { showLogin(""); $("phone").focus(); };
    if (!had) { done(); return; }
    gql("DashboardLogout").then(done, done);
  }

  // ---- the period ----

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function iso(y, m, d) { return y + "-" + pad(m) + "-" + pad(d); }
  function lastDay(y, m) { return new Date(Date.UTC(y, m, 0)).getUTCDate(); } // m is 1-12

  function initPeriod() {
    var now = new Date();
    var y = now.getFullYear();
    var m = now.getMonth() + 1;
    $("period-month").value = y + "-" + pad(m);
    $("period-year").value = String(y);
    $("period-quarter").value = String(Math.floor((m - 1) / 3) + 1);
    $("period-from").value = iso(y, m, 1);
    $("period-to").value = iso(y, m, now.getDate());
    $("period-kind").value = "year"; // the year so far: every month of it, from the first look
    showPeriodInputs();
  }

  function showPeriodInputs() {
    var kind = $("period-kind").value;
    var labels = document.querySelectorAll("#period-form [data-kind]");
    for (var i = 0; i < labels.length; i++) {
      labels[i].hidden = labels[i].getAttribute("data-kind").split(" ").indexOf(kind) < 0;
    }
  }

  // {from, to, report, label}; report is the REST period (2026-10, 2026-Q3) or null (no report for it).
  function chosenPeriod() {
    var kind = $("period-kind").value;
    var y, m, q;
    if (kind === "month") {
      var parts = /^(\d{4})-(\d{2})$/.exec($("period-month").value);
      if (!parts) { throw new Error("请选择月份"); }
      y = +parts[1]; m = +parts[2];
      return { from: iso(y, m, 1), to: iso(y, m, lastDay(y, m)), report: y + "-" + pad(m), label: y + "年" + m + "月" };
    }
    y = parseInt($("period-year").value, 10);
    if (kind === "quarter" || kind === "year") {
      if (!(y >= 2000 && y <= 2100)) { throw new Error("请输入年份（如 " + new Date().getFullYear() + "）"); }
    }
    if (kind === "quarter") {
      q = parseInt($("period-quarter").value, 10);
      var first = (q - 1) * 3 + 1;
      return { from: iso(y, first, 1), to: iso(y, first + 2, lastDay(y, first + 2)), report: y + "-Q" + q,
               label: y + "年第" + q + "季度" };
    }
    if (kind === "year") {
      return { from: iso(y, 1, 1), to: iso(y, 12, 31), report: null, label: y + "年" };
    }
    var from = $("period-from").value;
    var to = $("period-to").value;
    if (!from || !to) { throw new Error("请选择开始和结束日期"); }
    if (from > to) { throw new Error("结束日期不能早于开始日期"); }
    return { from: from, to: to, report: null, label: from + " 至 " + to };
  }

  function onPeriod(event) {
    if (event) { event.preventDefault(); }
    loadOverview();
  }

  function loadOverview() {
    var period;
    $("overview-error").hidden = true;
    try {
      period = chosenPeriod();
    } catch (error) {
      failed(error, "overview-error");
      return;
    }
    setState("loading");
    $("status").textContent = "正在加载 " + period.label + " 的数据…";
    $("period-apply").disabled = true;
    gql("DashboardOverview", { from: period.from, to: period.to }).then(function (data) {
      current = period;
      render(data.cityStats, period);
      $("status").textContent = "统计期间：" + period.label + "（" + period.from + " 至 " + period.to + "）";
      document.body.setAttribute("data-period", period.from + "/" + period.to);
      setState("ready");
    }).catch(function (error) {
      $("status").textContent = "";
      failed(error, "overview-error");
    }).then(function () {
      $("period-apply").disabled = false;
      updateDownloads();
    });
  }

  // ---- figures and charts ----

  function hours(x) { return Number(x).toLocaleString("zh-CN", { maximumFractionDigits: 1 }); }
  function count(x) { return Number(x).toLocaleString("zh-CN"); }
  function percent(rate) { return (Math.round(rate * 1000) / 10).toFixed(1) + "%"; }

  function render(s, period) {
    var text = {
      registeredVolunteers: count(s.registeredVolunteers),
      activeVolunteers: count(s.activeVolunteers),
      totalHours: hours(s.totalHours),
      hoursPerVolunteer: hours(s.hoursPerVolunteer),
      tasksPublished: count(s.tasksPublished),
      slots: count(s.slotsFilled) + " / " + count(s.slotsOffered),
      fillRate: percent(s.fillRate),
      noShowRate: percent(s.noShowRate) + "（" + count(s.noShows) + " 次）",
    };
    Object.keys(text).forEach(function (key) {
      document.querySelector('[data-figure="' + key + '"]').textContent = text[key];
    });

    var named = function (rows, part) {
      return {
        names: rows.map(function (r) { return r[part] ? r[part].name : "（未知）"; }),
        hours: rows.map(function (r) { return r.hours; }),
        volunteers: rows.map(function (r) { return r.volunteers; }),
      };
    };
    drawMonthly(s.monthly, period);
    drawBars("chart-towns", named(s.byTown, "town"));
    drawBars("chart-organizations", named(s.byOrganization, "organization"));
    drawBars("chart-projects", named(s.byProject.slice(0, 10), "project"));
    drawFillRate(s);
    drawStars(s.starLevels);
  }

  function chart(id, figures, option) {
    var el = $(id);
    el.setAttribute("data-figures", JSON.stringify(figures));
    var instance = charts[id] || echarts.init(el, null, { renderer: "canvas" });
    charts[id] = instance;
    option.color = COLORS;
    option.animation = false;
    instance.setOption(option, true);
    instance.resize(); // its box may have changed (bar charts grow with their list)
    return instance;
  }

  function empty(option, isEmpty) {
    if (isEmpty) {
      option.title = { text: "本期间暂无数据", left: "center", top: "middle",
                       textStyle: { color: "#9ca3af", fontSize: 14, fontWeight: "normal" } };
    }
    return option;
  }

  function drawMonthly(monthly, period) {
    var figures = {
      months: monthly.map(function (m) { return m.month; }),
      hours: monthly.map(function (m) { return m.hours; }),
      activeVolunteers: monthly.map(function (m) { return m.activeVolunteers; }),
      newVolunteers: monthly.map(function (m) { return m.newVolunteers; }),
    };
    chart("chart-monthly", figures, {
      tooltip: { trigger: "axis" },
      legend: { data: ["服务时长（小时）", "活跃志愿者"], top: 0 },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: figures.months },
      yAxis: [{ type: "value", name: "小时" },
              { type: "value", name: "人", minInterval: 1, splitLine: { show: false } }],
      series: [
        { name: "服务时长（小时）", type: "bar", data: figures.hours, barMaxWidth: 40 },
        { name: "活跃志愿者", type: "line", yAxisIndex: 1, data: figures.activeVolunteers, smooth: false },
      ],
    });
  }

  // Long names are cut to about a third of the chart's width (the tooltip has them whole).
  function labelWidth(id) { return Math.max(72, Math.min(200, Math.round($(id).clientWidth * 0.32))); }
  var BAR_CHARTS = ["chart-towns", "chart-organizations", "chart-projects"];

  function drawBars(id, figures) {
    // One row per name, every name shown: the chart grows with the list (a city has dozens of organizations).
    $(id).style.height = Math.max(240, figures.names.length * 28 + 48) + "px";
    chart(id, figures, empty({
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 valueFormatter: function (v) { return hours(v) + " 小时"; } },
      grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value" },
      yAxis: { type: "category", inverse: true, data: figures.names,
               axisLabel: { width: labelWidth(id), overflow: "truncate", interval: 0 } },
      series: [{ name: "服务时长（小时）", type: "bar", data: figures.hours, barMaxWidth: 24,
                 label: { show: true, position: "right" } }],
    }, figures.hours.length === 0));
  }

  function drawFillRate(s) {
    var figures = { fillRate: s.fillRate, slotsFilled: s.slotsFilled, slotsOffered: s.slotsOffered };
    chart("chart-fill-rate", figures, {
      series: [{
        name: "招募率", type: "gauge", min: 0, max: 100, radius: "90%", center: ["50%", "58%"],
        progress: { show: true, width: 14 }, axisLine: { lineStyle: { width: 14 } },
        axisLabel: { distance: 18, fontSize: 10 }, splitLine: { length: 8 }, axisTick: { show: false },
        pointer: { show: false }, title: { offsetCenter: [0, "35%"], fontSize: 13 },
        detail: { valueAnimation: false, formatter: "{value}%", offsetCenter: [0, "0%"], fontSize: 26 },
        data: [{ value: Math.round(s.fillRate * 1000) / 10,
                 name: "已招募 " + count(s.slotsFilled) + " / 提供 " + count(s.slotsOffered) + " 个岗位" }],
      }],
    });
  }

  function drawStars(levels) {
    var figures = {
      levels: levels.map(function (l) { return l.level; }),
      volunteers: levels.map(function (l) { return l.volunteers; }),
    };
    chart("chart-stars", figures, {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: figures.levels.map(function (l) { return STAR_NAMES[l] || l + "星"; }) },
      yAxis: { type: "value", name: "人", minInterval: 1 },
      series: [{ name: "志愿者人数", type: "bar", data: figures.volunteers, barMaxWidth: 40,
                 label: { show: true, position: "top" } }],
    });
  }

  function resizeCharts() {
    Object.keys(charts).forEach(function (id) {
      if (BAR_CHARTS.indexOf(id) >= 0) { charts[id].setOption({ yAxis: { axisLabel: { width: labelWidth(id) } } }); }
      charts[id].resize();
    });
  }

  function disposeCharts() {
    Object.keys(charts).forEach(function (id) {
      charts[id].dispose();
      $(id).removeAttribute("data-figures");
    });
    charts = {};
  }

  // ---- report downloads ----

  function updateDownloads() {
    var ready = current && current.report;
    $("download-xlsx").disabled = !ready;
    $("download-csv").disabled = !ready;
    $("download-hint").textContent = ready ? "报表：" + current.label + "（" + current.report + "）"
      : "报表按月或按季度提供：请选择月份或季度后查询";
  }

  function download(format) {
    if (!current || !current.report) { return; }
    var name = current.report + "." + format;
    var button = $("download-" + format);
    var box = $("overview-error");
    box.hidden = true;
    button.disabled = true;
    $("status").textContent = "正在生成报表 " + name + "…";
    fetch("/reports/" + encodeURIComponent(current.report) + "." + format, {
      headers: { Authorization: "Bearer " + token() },
    }).then(function (response) {
      document.body.setAttribute("data-last-download", response.status + " " + name);
      if (response.status === 401) { throw new AuthError("登录已失效，请重新登录"); }
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.message || "报表下载失败（" + response.status + "）");
        });
      }
      var disposition = response.headers.get("Content-Disposition") || "";
      var match = /filename="([^"]+)"/.exec(disposition);
      return response.blob().then(function (blob) { save(blob, match ? match[1] : "youthlink-report-" + name); });
    }).then(function () {
      $("status").textContent = "报表已下载：" + name;
    }).catch(function (error) {
      $("status").textContent = "";
      failed(error, "overview-error");
    }).then(function () {
      button.disabled = !(current && current.report);
    });
  }

  function save(blob, filename) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  // ---- start ----

  function start() {
    if (typeof echarts === "undefined") {
      document.body.textContent = "图表组件加载失败，请刷新页面重试";
      return;
    }
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", onLogout);
    $("period-form").addEventListener("submit", onPeriod);
    $("period-kind").addEventListener("change", showPeriodInputs);
    $("download-xlsx").addEventListener("click", function () { download("xlsx"); });
    $("download-csv").addEventListener("click", function () { download("csv"); });
    window.addEventListener("resize", resizeCharts);
    if (window.ResizeObserver) {
      new ResizeObserver(resizeCharts).observe(document.querySelector(".charts"));
    }
    initPeriod();
    updateDownloads();
    if (token()) {
      setState("loading");
      enter().catch(function (error) { showLogin(error.message); });
    } else {
      showLogin("");
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
