// ghapp dashboard: actions without a page reload, live updates over server-sent events,
// the job form's live cron preview. The pages work without this file; it only enhances.
(function () {
  "use strict";

  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var HEADERS = { "X-Requested-With": "ghapp-dashboard", "X-CSRF-Token": csrf };

  function flash(message, bad) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = bad ? "flash bad" : "flash";
    box.hidden = !message;
  }

  // -- live regions ------------------------------------------------------------------------
  var live = document.getElementById("live");
  var liveUrl = body.getAttribute("data-live");
  var refreshing = null;
  var again = false;

  function refresh() {
    if (!live || !liveUrl) return Promise.resolve();
    if (refreshing) { again = true; return refreshing; }
    refreshing = fetch(liveUrl, { headers: HEADERS, credentials: "same-origin" })
      .then(function (answer) {
        if (answer.status === 401) { window.location.assign("/login"); return null; }
        return answer.ok ? answer.text() : null;
      })
      .then(function (html) { if (html !== null) swap(html); })
      .catch(function () { /* offline for a moment: the next event retries */ })
      .then(function () {
        refreshing = null;
        if (again) { again = false; refresh(); }
      });
    return refreshing;
  }

  function swap(html) {
    var focused = document.activeElement && document.activeElement.id;
    var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"),
      function (el) { return el.id; });
    live.innerHTML = html;
    open.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.open = true;
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again) again.focus();
    }
    updateTimes();
    body.setAttribute("data-refreshed", String(Date.now()));
  }

  if (live && liveUrl && window.EventSource) {
    var since = body.getAttribute("data-since");
    var source = new EventSource("/events" + (since ? "?since=" + encodeURIComponent(since) : ""));
    source.addEventListener("change", refresh);
    source.addEventListener("tick", function () {
      if (live.querySelector('[data-running="1"]')) refresh();
    });
    source.addEventListener("hello", function () { body.setAttribute("data-live-ready", "1"); });
    source.addEventListener("open", function () { body.setAttribute("data-live-ready", "1"); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // -- actions -------------------------------------------------------------------------------
  function post(url, data) {
    return fetch(url, {
      method: "POST",
      headers: HEADERS,
      body: data || new URLSearchParams(),
      credentials: "same-origin",
    }).then(function (answer) {
      return answer.json().catch(function () {
        return { ok: false, error: "The server answered " + answer.status + "." };
      });
    });
  }

  function after(result) {
    if (!result.ok) {
      if (result.location === "/login") { window.location.assign("/login"); return; }
      flash(result.error || "That did not work.", true);
      return;
    }
    flash(result.message || "Done.");
    var elsewhere = result.run_id && liveUrl && liveUrl.indexOf("/runs/") === 0;
    if (live && liveUrl && !elsewhere) {
      refresh();
    } else if (result.location) {
      window.location.assign(result.location);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-action")) return;
    event.preventDefault();
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    // The button pressed may send the form elsewhere (formaction: Pause next to Run now).
    var button = event.submitter || form.querySelector("button");
    var url = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    if (button) button.disabled = true;
    post(url, new URLSearchParams(new FormData(form)))
      .then(after, function () { flash("The server could not be reached.", true); })
      .then(function () { if (button && document.body.contains(button)) button.disabled = false; });
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-post]");
    if (!link) return;
    event.preventDefault();
    var question = link.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    post(link.getAttribute("data-post"), new URLSearchParams({ csrf_token: csrf }))
      .then(function (result) {
        // Deleting from the job's own page leaves it: the page it was on is gone.
        var away = result.location && result.location.split(/[?#]/)[0] !== window.location.pathname;
        if (result.ok && (away || !(live && liveUrl))) {
          window.location.assign(result.then || result.location || "/");
          return;
        }
        after(result);
      }, function () { flash("The server could not be reached.", true); });
  });

  // -- relative times -----------------------------------------------------------------------
  function relative(moment) {
    var seconds = (moment - Date.now()) / 1000;
    var future = seconds > 0;
    var span = Math.abs(seconds);
    if (span < 45) return future && span >= 5 ? "in a few seconds" : "just now";
    var units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      if (span >= units[i][1] * 0.95 || units[i][0] === "minute") {
        var count = Math.max(1, Math.round(span / units[i][1]));
        var words = count + " " + units[i][0] + (count === 1 ? "" : "s");
        return future ? "in " + words : words + " ago";
      }
    }
    return "";
  }

  function updateTimes() {
    if (body.hasAttribute("data-server-times")) return;
    // data-fixed: an exact time that should stay exact (a job's next five runs).
    var times = document.querySelectorAll("time[datetime]:not([data-fixed])");
    for (var i = 0; i < times.length; i++) {
      var moment = Date.parse(times[i].getAttribute("datetime"));
      if (!isNaN(moment)) times[i].textContent = relative(moment);
    }
  }
  window.setInterval(updateTimes, 30000);

  // -- the job form ---------------------------------------------------------------------------
  var form = document.getElementById("job-form");
  if (form) {
    var cron = document.getElementById("cron_expression");
    var zone = document.getElementById("timezone");
    var description = document.getElementById("cron-description");
    var problem = document.getElementById("cron-problem");
    var next = document.getElementById("cron-next");
    var timer = null;
    var asked = 0;

    if (form.getAttribute("data-new") === "1" && zone && zone.value === "UTC") {
      try {
        var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (browserZone) zone.value = browserZone;
      } catch (e) { /* keep UTC */ }
    }

    // A refused save shows the server's message next to the field; the live one takes over
    // as soon as the expression is edited.
    var serverError = document.getElementById("cron_expression-error");
    var preview = function () {
      var mine = ++asked;
      var url = "/dashboard/cron?expr=" + encodeURIComponent(cron.value) +
                "&tz=" + encodeURIComponent(zone ? zone.value : "UTC");
      fetch(url, { headers: HEADERS, credentials: "same-origin" })
        .then(function (answer) { return answer.json(); })
        .then(function (result) {
          if (mine !== asked) return; // an older answer arriving late
          description.textContent = result.description || "";
          problem.textContent = result.error || "";
          problem.hidden = !result.error || Boolean(serverError);
          next.innerHTML = "";
          (result.display || []).forEach(function (text) {
            var item = document.createElement("li");
            item.textContent = text;
            next.appendChild(item);
          });
        })
        .catch(function () { /* keep what is shown */ });
    };
    var later = function () {
      if (serverError) { serverError.remove(); serverError = null; }
      window.clearTimeout(timer);
      timer = window.setTimeout(preview, 150);
    };
    if (cron) {
      cron.addEventListener("input", later);
      if (zone) zone.addEventListener("input", later);
      if (zone) zone.addEventListener("change", later);
      if (cron.value) preview();
    }
    Array.prototype.forEach.call(document.querySelectorAll("button[data-cron]"), function (button) {
      button.addEventListener("click", function () {
        if (serverError) { serverError.remove(); serverError = null; }
        cron.value = button.getAttribute("data-cron");
        cron.focus();
        preview();
      });
    });

    var target = document.getElementById("target_type");
    var command = document.getElementById("command_id");
    var filterCommands = function () {
      if (!target || !command) return;
      Array.prototype.forEach.call(command.querySelectorAll("optgroup"), function (group) {
        var fits = group.getAttribute("data-target") === target.value ||
                   group.getAttribute("data-target") === "any";
        group.hidden = !fits;
        group.disabled = !fits;
      });
      var chosen = command.selectedOptions[0];
      if (chosen && chosen.parentNode.disabled) command.value = "";
    };
    if (target) target.addEventListener("change", filterCommands);
    filterCommands();
  }

  updateTimes();
})();
