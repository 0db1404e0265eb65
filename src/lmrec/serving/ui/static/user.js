/* User: history, recommendations with explanations, live knobs, events by choosing an item, erasure. */
"use strict";

LM.start(async () => {
  const { el, say } = LM;
  const form = document.getElementById("user-form");
  const status = document.getElementById("user-status");
  const view = document.getElementById("user-view");
  const recsList = document.getElementById("recs");
  let shown = { user: null, ids: [] }; // the list on screen, to mark what moved
  let requestId = "";
  let pending = 0; // drop answers of superseded requests

  const userId = () => document.getElementById("user-id").value.trim();

  function number(id) {
    const v = document.getElementById(id).value.trim();
    return v === "" ? undefined : Number(v);
  }

  function json(id) {
    const v = document.getElementById(id).value.trim();
    if (v === "") return undefined;
    const parsed = JSON.parse(v); // a SyntaxError names the field below
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new SyntaxError("must be a JSON object");
    return parsed;
  }

  /** The POST /v1/recommendations body the form describes (knobs left empty: the model's). */
  function request(user) {
    // preview: the page looking at a user is not an experiment exposure.
    const body = { user_id: user, k: number("k") || 10, explain: true, preview: true };
    const query = document.getElementById("query").value.trim();
    if (query) body.query = query;
    for (const [id, name] of [["mmr-lambda", "mmr_lambda"], ["exposure-cap", "exposure_cap"]]) {
      const v = number(id);
      if (v !== undefined) body[name] = v;
    }
    const field = document.getElementById("exposure-field").value.trim();
    if (field) body.exposure_field = field;
    for (const name of ["boosts", "filters"]) {
      try {
        const v = json(name);
        if (v !== undefined) body[name] = v;
      } catch (err) {
        throw new Error(name + ": " + err.message);
      }
    }
    return body;
  }

  function moves(before, after) {
    const old = new Map(before.map((id, i) => [id, i]));
    return after.map((id, i) => (old.has(id) ? old.get(id) - i : null));
  }

  function renderRecs(user, recs, names) {
    const ids = recs.items.map((r) => r.item_id);
    const same = shown.user === user;
    const moved = same ? moves(shown.ids, ids) : ids.map(() => 0);
    const gone = same ? shown.ids.filter((id) => !ids.includes(id)) : [];
    LM.clear(recsList);
    recs.items.forEach((r, i) => {
      const title = names.get(r.item_id) || r.item_id;
      let badge = null;
      let cls = "rec";
      if (moved[i] === null) {
        badge = "new";
        cls += " moved new";
      } else if (moved[i] > 0) {
        badge = "up " + moved[i];
        cls += " moved up";
      } else if (moved[i] < 0) {
        badge = "down " + -moved[i];
        cls += " moved down";
      }
      const why = r.explanation && r.explanation.text ? r.explanation.text : r.reasons.join("; ");
      recsList.append(
        el("li", { class: cls, "data-item-id": r.item_id },
          el("div", { class: "rec-head" },
            el("button", { type: "button", class: "pick", "data-item-id": r.item_id, onclick: () => pick(r.item_id, title) }, title),
            el("span", { class: "id" }, r.item_id),
            badge && el("span", { class: "badge" }, badge),
            el("span", { class: "score" }, "score " + LM.num(r.score, 3)),
            r.team && el("span", { class: "muted" }, "team " + r.team)),
          el("p", { class: "why" }, why),
          el("p", { class: "small" }, LM.itemLink(r.item_id, "item details"))));
    });
    if (!recs.items.length) recsList.append(el("li", { class: "muted" }, "No items: every candidate is filtered out or seen."));
    shown = { user, ids };
    const changed = moved.filter((m) => m !== 0).length;
    let text = recs.items.length + " items from " + recs.model_version + (recs.variant ? " (experiment " + recs.experiment_id + ", variant " + recs.variant + ")" : "") + ".";
    if (same && (changed || gone.length)) text += " " + changed + " moved" + (gone.length ? "; left the list: " + gone.join(", ") : "") + ".";
    return text;
  }

  function renderHistory(h) {
    document.getElementById("history-note").textContent =
      (h.known ? "The model was trained with this user's history." : "Not in the model's training data: served from stored events only.") +
      (h.erased ? " The user was erased." : "");
    const rows = LM.clear(document.querySelector("#events tbody"));
    for (const e of h.events) {
      rows.append(el("tr", {},
        el("td", {}, LM.when(e.timestamp)),
        el("td", {}, e.type + (e.value !== null ? " " + e.value : "")),
        el("td", {}, e.item_id ? LM.itemLink(e.item_id, e.title ? e.title + " (" + e.item_id + ")" : e.item_id) : "–"),
        el("td", {}, e.in_history ? "yes" : "no")));
    }
    if (!h.events.length) rows.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No stored events.")));
    const trained = LM.clear(document.getElementById("trained"));
    for (const item of h.trained) trained.append(el("li", {}, LM.itemLink(item.item_id, item.title ? item.title + " (" + item.item_id + ")" : item.item_id)));
    if (!h.trained.length) trained.append(el("li", { class: "muted" }, "None."));
  }

  async function load(note) {
    const user = userId();
    if (!user) return;
    let body;
    try {
      body = request(user);
    } catch (err) {
      say(status, err.message, "error");
      return;
    }
    const mine = ++pending;
    say(status, "Loading " + user + "…");
    try {
      const [recs, history] = await Promise.all([
        LM.api("POST", "/v1/recommendations", body),
        LM.api("POST", "/v1/users/history", { user_id: user, limit: 50 }),
      ]);
      const names = await LM.titles(recs.items.map((r) => r.item_id));
      if (mine !== pending) return;
      requestId = recs.request_id;
      const text = renderRecs(user, recs, names);
      renderHistory(history);
      view.hidden = false;
      say(status, (note ? note + " " : "") + text, note ? "ok" : "");
    } catch (err) {
      if (mine !== pending) return;
      view.hidden = true; // an error never leaves another answer's data on screen
      shown = { user: null, ids: [] };
      LM.fail(status, err);
    }
  }

  async function pick(itemId, title) {
    const user = userId();
    const type = document.getElementById("event-type").value;
    const event = { event_id: LM.randomId(), user_id: user, item_id: itemId, type };
    if (requestId) event.request_id = requestId;
    try {
      await LM.api("POST", "/v1/events", { events: [event] });
    } catch (err) {
      LM.fail(status, err);
      return;
    }
    await load("Posted " + type + " on " + title + ".");
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    LM.setHashParam("user", userId());
    load();
  });
  const live = LM.debounce(() => load(), 300);
  for (const input of form.querySelectorAll("fieldset:nth-of-type(2) input, fieldset:nth-of-type(2) select")) {
    if (input.id !== "event-type") input.addEventListener("input", live);
  }
  document.getElementById("erase").addEventListener("click", async () => {
    const user = userId();
    if (!user || !confirm("Erase every event, exposure and state of " + user + "? This cannot be undone.")) return;
    try {
      const done = await LM.api("DELETE", "/v1/users", { user_id: user });
      await load("Erased " + user + ": " + done.erased_events + " events removed.");
    } catch (err) {
      LM.fail(status, err);
    }
  });

  const initial = LM.hashParam("user");
  if (initial) {
    document.getElementById("user-id").value = initial;
    await load();
  } else {
    document.getElementById("user-id").focus();
  }
});
