/* The manager dashboard's charts: reads each chart's data from its json_script element (the CSP
   allows no inline script) and draws it with the vendored Apache ECharts — tooltips, resized with
   its box, laid out tighter on a phone. Each card's table stays the fallback without script; here
   the Chart / Table buttons switch between the two. Kinds: "axis" (bars and lines, optionally
   horizontal, a second axis for percentages), "heatmap", "pie" (see dashboards/charts.py). */
(function () {
  "use strict";
  if (typeof window.echarts === "undefined") { return; }  // the tables stay as they are

  var PALETTE = ["#0d6efd", "#20c997", "#fd7e14", "#6f42c1", "#198754", "#d63384", "#6c757d", "#0dcaf0"];
  var NARROW = 576;  // px: Bootstrap's sm breakpoint — below it a chart is on a phone

  function durationText(hours) {
    // The tooltip's reading of a duration in hours: 2d 3h / 3h 20m / 12m (as the 工作台 writes it).
    var minutes = Math.round(hours * 60);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    return m + "m";
  }

  function valueText(value, unit) {
    if (value === null || value === undefined || value === "-") { return "—"; }
    if (unit === "h") { return value + " (" + durationText(value) + ")"; }
    if (unit === "%") { return value + "%"; }
    return String(value);
  }

  function escapeText(text) {
    var span = document.createElement("span");
    span.textContent = text === null || text === undefined ? "" : String(text);
    return span.innerHTML;
  }

  function axisTooltip(spec) {
    return function (params) {
      var list = Array.isArray(params) ? params : [params];
      if (!list.length) { return ""; }
      var lines = ["<strong>" + escapeText(list[0].axisValueLabel || list[0].name) + "</strong>"];
      list.forEach(function (p) {
        var unit = (spec.series[p.seriesIndex] || {}).unit || "";
        lines.push(p.marker + escapeText(p.seriesName) + ": <strong>" + escapeText(valueText(p.value, unit)) + "</strong>");
      });
      return lines.join("<br>");
    };
  }

  function legend(narrow) {
    return {type: "scroll", top: 0, left: narrow ? 0 : "center", itemWidth: 14, itemHeight: 10,
            textStyle: {fontSize: narrow ? 11 : 12}};
  }

  function sharedPrefix(names) {
    // Store names often share the brand ("味道江南・上海徐汇店", "味道江南・杭州…"): the axis
    // shows what tells them apart; the tooltip and the table keep the whole name.
    if (!names || names.length < 2) { return ""; }
    var prefix = String(names[0]);
    names.forEach(function (name) {
      name = String(name);
      while (prefix && name.indexOf(prefix) !== 0) { prefix = prefix.slice(0, -1); }
    });
    var cut = Math.max(prefix.lastIndexOf("・"), prefix.lastIndexOf("·"), prefix.lastIndexOf(" "),
                       prefix.lastIndexOf("-"));
    prefix = cut >= 1 ? prefix.slice(0, cut + 1) : "";
    return names.every(function (name) { return String(name).length > prefix.length; }) ? prefix : "";
  }

  function axisOption(spec, narrow) {
    var horizontal = !!spec.horizontal;
    var prefix = horizontal ? sharedPrefix(spec.categories) : "";
    var categoryAxis = {
      type: "category", data: spec.categories, inverse: horizontal,  // horizontal: the first (busiest) on top
      axisTick: {alignWithLabel: true},
      axisLabel: horizontal
        ? {width: narrow ? 72 : 150, overflow: "truncate", fontSize: narrow ? 10 : 12,
           formatter: function (name) { return prefix ? String(name).slice(prefix.length) : name; }}
        : {hideOverlap: true, fontSize: narrow ? 10 : 12}
    };
    var valueAxes = (spec.axes || [{}]).map(function (axis, i) {
      var percent = axis.name === "%";
      return {type: "value", name: narrow || percent ? "" : axis.name, max: axis.max, minInterval: percent ? 0 : 1,
              splitLine: {show: i === 0}, nameTextStyle: {fontSize: 11},
              axisLabel: {fontSize: narrow ? 10 : 12, formatter: percent ? "{value}%" : "{value}"}};
    });
    var series = spec.series.map(function (s, i) {
      var out = {name: s.name, type: s.type, data: s.data, stack: s.stack || undefined,
                 itemStyle: {color: PALETTE[i % PALETTE.length]}, emphasis: {focus: "series"}};
      if (s.axis) { out[horizontal ? "xAxisIndex" : "yAxisIndex"] = s.axis; }
      if (s.type === "line") {
        // Straight segments: a smoothed curve overshoots between far-apart points (a 0 % day
        // next to a 100 % day) and draws values nobody measured.
        out.smooth = false; out.symbolSize = 5; out.connectNulls = false;
        if (s.area) { out.areaStyle = {opacity: 0.12}; }
      } else {
        out.barMaxWidth = horizontal ? 14 : 28;
      }
      return out;
    });
    var option = {
      color: PALETTE, animationDuration: 400,
      legend: legend(narrow),
      tooltip: {trigger: "axis", axisPointer: {type: horizontal ? "shadow" : "line"}, confine: true,
                formatter: axisTooltip(spec)},
      grid: {left: 8, right: narrow ? 18 : 28, top: narrow ? 56 : 48, bottom: 8, containLabel: true},
      series: series
    };
    if (horizontal) {
      option.yAxis = categoryAxis;
      option.xAxis = valueAxes;
    } else {
      option.xAxis = categoryAxis;
      option.yAxis = valueAxes;
    }
    return option;
  }

  function heatmapOption(spec, narrow) {
    var x = spec.x, y = spec.y;
    return {
      animationDuration: 300,
      tooltip: {position: "top", confine: true, formatter: function (p) {
        return escapeText(y[p.value[1]]) + " · " + escapeText(x[p.value[0]]) + ": <strong>" + p.value[2] + "</strong> "
          + escapeText(spec.name);
      }},
      grid: {left: 8, right: 8, top: 8, bottom: narrow ? 64 : 56, containLabel: true},
      xAxis: {type: "category", data: x, splitArea: {show: true},
              axisLabel: {interval: x.length > 12 && narrow ? 2 : 0, fontSize: narrow ? 10 : 12}},
      yAxis: {type: "category", data: y, inverse: true, splitArea: {show: true},
              axisLabel: {width: narrow ? 70 : 120, overflow: "truncate", fontSize: narrow ? 10 : 12}},
      visualMap: {min: 0, max: Math.max(spec.max || 0, 1), calculable: true, orient: "horizontal", left: "center",
                  bottom: 0, itemHeight: narrow ? 120 : 180, itemWidth: 12, textStyle: {fontSize: 11},
                  inRange: {color: ["#f8f9fa", spec.color || "#dc3545"]}},
      series: [{name: spec.name, type: "heatmap", data: spec.data,
                label: {show: !narrow && x.length <= 12, fontSize: 11,
                        formatter: function (p) { return p.value[2] ? p.value[2] : ""; }},
                emphasis: {itemStyle: {borderColor: "#212529", borderWidth: 1}}}]
    };
  }

  function pieOption(spec, narrow) {
    return {
      color: PALETTE, animationDuration: 400,
      legend: legend(narrow),
      tooltip: {trigger: "item", confine: true, formatter: function (p) {
        return p.marker + escapeText(p.name) + ": <strong>" + p.value + "</strong> (" + p.percent + "%)";
      }},
      series: [{type: "pie", radius: narrow ? ["35%", "62%"] : ["40%", "68%"], center: ["50%", "58%"],
                data: spec.data, avoidLabelOverlap: true, percentPrecision: 1,
                label: {formatter: "{b}\n{d}%", fontSize: narrow ? 10 : 12}}]
    };
  }

  var BUILD = {axis: axisOption, heatmap: heatmapOption, pie: pieOption};
  var drawn = [];

  function boxHeight(box, narrow) {
    var height = parseInt(box.getAttribute("data-height"), 10) || 280;
    // On a phone a long category list keeps its rows readable; a time axis gets a little shorter.
    return narrow ? Math.max(240, Math.round(height * 0.9)) : height;
  }

  function render(item) {
    var narrow = item.box.clientWidth < NARROW;
    if (item.narrow === narrow && item.chart) { item.chart.resize(); return; }
    item.narrow = narrow;
    item.box.style.height = boxHeight(item.box, narrow) + "px";
    if (!item.chart) { item.chart = window.echarts.init(item.box, null, {renderer: "canvas"}); }
    else { item.chart.resize(); }
    item.chart.setOption(BUILD[item.kind](item.spec, narrow), true);
  }

  function show(card, view) {
    var box = card.querySelector(".echart"), table = card.querySelector(".chart-table");
    box.hidden = view !== "chart";
    table.hidden = view === "chart";
    card.querySelectorAll("[data-view]").forEach(function (button) {
      var on = button.getAttribute("data-view") === view;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (view === "chart") {
      drawn.forEach(function (item) { if (item.box === box) { render(item); } });
    }
  }

  document.querySelectorAll(".chart-card").forEach(function (card) {
    var box = card.querySelector(".echart");
    if (!box) { return; }
    var source = document.getElementById(box.getAttribute("data-source"));
    var kind = box.getAttribute("data-chart");
    if (!source || !BUILD[kind]) { return; }
    var item = {box: box, kind: kind, spec: JSON.parse(source.textContent), chart: null, narrow: null};
    drawn.push(item);
    var toggle = card.querySelector(".chart-toggle");
    if (toggle) {
      toggle.hidden = false;
      toggle.addEventListener("click", function (event) {
        var button = event.target.closest("[data-view]");
        if (button) { show(card, button.getAttribute("data-view")); }
      });
    }
    show(card, "chart");
  });

  // Follow the box's width (window resize, phone rotation, sidebar opening): redraw when it
  // crosses the phone width, else just resize.
  var pending = null;
  function refit() {
    pending = null;
    drawn.forEach(function (item) { if (!item.box.hidden) { render(item); } });
  }
  function schedule() { if (!pending) { pending = window.requestAnimationFrame(refit); } }
  if (typeof window.ResizeObserver === "function") {
    var observer = new window.ResizeObserver(schedule);
    drawn.forEach(function (item) { observer.observe(item.box.parentElement); });
  } else {
    window.addEventListener("resize", schedule);
  }
})();
