/* Overview: the model and its manifest, counts, traffic, model loads; swap a model (admin). */
"use strict";

LM.start(async () => {
  const { el, say, num, when } = LM;
  const status = document.getElementById("overview-status");
  const auto = document.getElementById("auto-refresh");
  let previous = null; // {t, accepted}: the last poll, for the event rate between polls

  function tile(label, value, id) {
    return el("li", { "data-stat": id }, el("span", { class: "value" }, value), el("span", { class: "label" }, label));
  }

  function render(o) {
    const m = o.model;
    const man = o.manifest;
    const validation = man.validation ? LM.flatten(man.validation).map(([k, v]) => k + " " + v).join("; ") : "none held out";
    LM.facts(document.getElementById("model"), [
      ["Version", el("code", { id: "model-version" }, m.model_version)],
      ["Strategy", m.strategy],
      ["Items", num(m.n_items)],
      ["Text model", m.text_model || "none (new items need an encoder)"],
      ["Created", man.created ? new Date(man.created).toLocaleString() : null],
      ["Trained on", man.dataset ? LM.flatten(man.dataset).map(([k, v]) => k + " " + v).join("; ") : null],
      ["Validation", validation],
      ["lmrec", man.lmrec_version],
    ]);
    const manifest = LM.clear(document.getElementById("manifest"));
    for (const [section, title] of [["model", "Model and its configuration"], ["pipeline", "Default re-ranking knobs"], ["validation", "Validation"], ["event_policy", "Event policy"], ["dataset", "Dataset"]]) {
      if (!man[section]) continue;
      const dl = el("dl", { class: "facts" });
      LM.facts(dl, LM.flatten(man[section]));
      manifest.append(el("h3", {}, title), dl);
    }

    const c = o.counts;
    LM.clear(document.getElementById("counts")).append(
      tile("users in the model", num(c.users_trained), "users_trained"),
      tile("users with events", num(c.users_online), "users_online"),
      tile("items (" + num(c.items_active) + " active)", num(c.items), "items"),
      tile("items changed online", num(c.items_online), "items_online"),
      tile("stored events", num(c.events), "events"),
      tile("erased users", num(c.erased_users), "erased_users"),
      tile("experiments running", num(o.experiments_running), "experiments_running"),
    );

    const traffic = LM.clear(document.getElementById("traffic"));
    const routes = LM.clear(document.querySelector("#routes tbody"));
    const note = document.getElementById("traffic-note");
    if (o.traffic === null) {
      note.textContent = "The server's metrics are private (--private-metrics): an admin key sees them.";
    } else {
      const t = o.traffic;
      const now = performance.now();
      let recent = "–";
      if (previous !== null && now > previous.t) {
        recent = num((t.events_accepted - previous.accepted) / ((now - previous.t) / 1000), 2);
      }
      previous = { t: now, accepted: t.events_accepted };
      note.textContent = "Since the server started " + num(t.uptime_s / 60, 1) + " min ago.";
      traffic.append(
        tile("requests", num(t.requests), "requests"),
        tile("events accepted", num(t.events_accepted), "events_accepted"),
        tile("events/s since start", num(t.events_per_s, 2), "events_per_s"),
        tile("events/s last poll", recent, "events_recent"),
        tile("duplicate events", num(t.events_duplicate), "events_duplicate"),
      );
      for (const r of t.routes) {
        routes.append(el("tr", {}, el("td", {}, el("code", {}, r.route)), el("td", {}, num(r.requests)), el("td", {}, num(r.errors)), el("td", {}, num(r.mean_ms, 1)), el("td", {}, num(r.p50_ms, 1)), el("td", {}, num(r.p95_ms, 1))));
      }
    }

    const loads = LM.clear(document.querySelector("#loads tbody"));
    for (const l of [...o.loads].reverse()) {
      loads.append(el("tr", { class: l.accepted ? "" : "rejected" },
        el("td", {}, when(l.at)),
        el("td", {}, l.version ? el("code", {}, l.version) : "–"),
        el("td", {}, l.strategy || "–"),
        el("td", {}, l.accepted ? "serving" + (l === o.loads[o.loads.length - 1] ? " now" : " (replaced)") : "rejected: " + l.reason),
        el("td", {}, l.path ? el("code", {}, l.path) : "(admin keys see it)")));
    }
    document.getElementById("overview").hidden = false;
  }

  async function load() {
    try {
      render(await LM.api("GET", "/v1/overview"));
      say(status, "Updated " + new Date().toLocaleTimeString() + ".");
    } catch (err) {
      document.getElementById("overview").hidden = true; // never leave old figures under an error
      LM.fail(status, err);
    }
  }

  document.getElementById("refresh").addEventListener("click", load);
  document.getElementById("swap-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const swap = document.getElementById("swap-status");
    const path = document.getElementById("swap-path").value.trim();
    say(swap, "Loading, verifying and warming " + path + "…");
    try {
      const m = await LM.api("POST", "/v1/admin/models", { path });
      say(swap, "Now serving " + m.model_version + " (" + m.strategy + ").", "ok");
    } catch (err) {
      LM.fail(swap, err);
    }
    await load();
  });
  setInterval(() => {
    if (auto.checked && !document.hidden) load();
  }, 5000);
  await load();
});
