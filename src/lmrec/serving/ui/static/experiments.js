/* Experiments: the list, a report (per-variant metrics, CIs, SRM), start and stop (admin). */
"use strict";

LM.start(async () => {
  const { el, say, num } = LM;
  const status = document.getElementById("exp-status");
  const tbody = document.querySelector("#experiments tbody");
  const reportSection = document.getElementById("report-section");

  const pct = (v) => (v === null || v === undefined ? "–" : num(100 * v, 1) + "%");
  const ci = (pair, fmt) => (pair && pair[0] !== null && pair[1] !== null ? "[" + fmt(pair[0]) + ", " + fmt(pair[1]) + "]" : "–");
  const path = (id) => "/v1/experiments/" + encodeURIComponent(id);

  async function list() {
    try {
      const data = await LM.api("GET", "/v1/experiments");
      LM.clear(tbody);
      for (const e of data.experiments) {
        const actions = el("td", { class: "actions" },
          el("button", { type: "button", class: "secondary", "data-report": e.id, onclick: () => report(e.id) }, "Report"),
          e.status !== "stopped" && el("button", { type: "button", class: "danger", "data-stop": e.id, onclick: () => stop(e.id) }, "Stop"));
        tbody.append(el("tr", { "data-experiment": e.id },
          el("td", {}, el("code", {}, e.id)),
          el("td", {}, e.type),
          el("td", {}, e.status),
          el("td", {}, e.layer + " (" + pct(e.traffic) + ")"),
          el("td", {}, e.variants.map((v) => v.name + " " + pct(v.share)).join(", ")),
          actions));
      }
      if (!data.experiments.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No experiments yet.")));
      say(status, data.experiments.length + " experiments.");
    } catch (err) {
      LM.clear(tbody);
      LM.fail(status, err);
    }
  }

  function table(caption, head, rows) {
    return el("div", { class: "scroll" }, el("table", {},
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))));
  }

  async function report(id) {
    const out = LM.clear(document.getElementById("report"));
    reportSection.hidden = false;
    try {
      const r = await LM.api("GET", path(id) + "/report");
      const facts = el("dl", { class: "facts" });
      LM.facts(facts, [["Experiment", el("code", {}, id)], ["Status", r.status], ["Lists served", num(r.exposures_total)], ["As of", LM.when(r.as_of)], ["Primary metric", r.primary_metric]]);
      out.append(facts);
      out.append(table("Units and exposures per variant", ["Variant", "Units", "Exposures"],
        Object.keys(r.units).map((v) => [v, num(r.units[v]), num(r.exposures[v])])));
      if (r.srm) {
        out.append(el("p", { class: r.srm.flagged ? "error srm" : "srm" },
          "Sample ratio check: chi² " + num(r.srm.chi2, 3) + ", p " + num(r.srm.p_value, 4) +
          (r.srm.flagged ? " — MISMATCH: the split is not the designed one; do not trust the comparisons." : " — consistent with the designed split.")));
      } else {
        out.append(el("p", { class: "muted srm" }, "Sample ratio check: no units yet (or not applicable)."));
      }
      const rows = (r.comparisons || []).map((c) => {
        const chosen = c.cuped && !c.cuped.error ? c.cuped : c.plain;
        if (chosen.error) return [c.metric, c.variant + " vs " + c.control, chosen.error, "–", "–", "–", "–", "–", "–"];
        return [
          c.metric,
          c.variant + " vs " + c.control,
          chosen.method,
          num(chosen.mean_a, 4) + " → " + num(chosen.mean_b, 4),
          pct(chosen.lift) + " " + ci(chosen.lift_ci, pct),
          num(chosen.diff, 4) + " " + ci(chosen.ci, (v) => num(v, 4)),
          num(chosen.p_value, 4),
          num(c.always_valid_p, 4) + " (BH " + num(c.always_valid_p_bh, 4) + ")",
          c.significant === null ? "–" : c.significant ? "yes" : "no",
        ];
      });
      out.append(table("Comparisons against the control (intervals at the experiment's alpha)",
        ["Metric", "Arms", "Method", "Mean control → variant", "Lift [CI]", "Difference [CI]", "p", "Always-valid p", "Significant"], rows));
      out.focus();
    } catch (err) {
      const p = el("p", { class: "error" });
      LM.fail(p, err);
      out.append(p);
    }
  }

  async function stop(id) {
    if (!confirm("Stop experiment " + id + "? Its units get the default pipeline from the next request; its data stays.")) return;
    try {
      await LM.api("POST", "/v1/admin/experiments/" + encodeURIComponent(id) + "/stop");
    } catch (err) {
      LM.fail(status, err);
      return;
    }
    await list();
    say(status, "Stopped " + id + ".", "ok");
  }

  document.getElementById("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("start-status");
    let spec;
    try {
      spec = JSON.parse(document.getElementById("spec").value);
    } catch (err) {
      say(out, "The definition is not valid JSON: " + err.message, "error");
      return;
    }
    let started;
    try {
      started = await LM.api("POST", "/v1/admin/experiments", spec);
    } catch (err) {
      LM.fail(out, err);
      return;
    }
    await list();
    say(out, "Started " + started.id + " (" + started.status + ").", "ok");
  });
  document.getElementById("report").setAttribute("tabindex", "-1");
  await list();
});
