/* Item: details and similar items; add or edit an item and check that a user's list has it. */
"use strict";

LM.start(async () => {
  const { el, say } = LM;
  const status = document.getElementById("item-status");
  const section = document.getElementById("details-section");
  let current = null; // the item shown

  const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
  const field = (id) => document.getElementById(id);

  async function show(itemId) {
    say(status, "Loading " + itemId + "…");
    try {
      const found = await LM.api("POST", "/v1/items/lookup", { item_ids: [itemId] });
      if (!found.items.length) {
        section.hidden = true;
        current = null;
        say(status, "No item " + itemId + " is known to the serving model.", "error");
        return;
      }
      current = found.items[0];
      const pairs = [["Id", el("code", {}, current.item_id)], ["Recommended", current.active ? "yes" : "no (deleted)"]];
      for (const [k, v] of LM.flatten(current.fields)) pairs.push([k, v]);
      LM.facts(field("details"), pairs);
      const similar = LM.clear(field("similar"));
      if (current.active) {
        try {
          const sim = await LM.api("GET", "/v1/items/similar?k=10&item_id=" + encodeURIComponent(itemId));
          const names = await LM.titles(sim.items.map((r) => r.item_id));
          for (const r of sim.items) {
            similar.append(el("li", {}, LM.itemLink(r.item_id, (names.get(r.item_id) || r.item_id) + " (" + r.item_id + ")"), " ", el("span", { class: "muted" }, r.reasons.join("; "))));
          }
          if (!sim.items.length) similar.append(el("li", { class: "muted" }, "None: the item has no trained neighbours or text vector."));
        } catch (err) {
          similar.append(el("li", { class: "error" }, err.message));
        }
      }
      section.hidden = false;
      say(status, "");
    } catch (err) {
      section.hidden = true;
      current = null;
      LM.fail(status, err);
    }
  }

  function fill(item) {
    const f = item.fields;
    field("f-id").value = item.item_id;
    field("f-title").value = f.title || "";
    field("f-brand").value = f.brand || "";
    field("f-categories").value = (f.categories || []).join(", ");
    field("f-tags").value = (f.tags || []).join(", ");
    field("f-description").value = f.description || "";
    field("f-title").focus();
  }

  async function check() {
    const user = field("check-user").value.trim();
    const target = field("f-id").value.trim() || (current && current.item_id);
    const out = field("check-status");
    const ol = LM.clear(field("check-list"));
    if (!user) return;
    try {
      const recs = await LM.api("POST", "/v1/recommendations", { user_id: user, k: 10, explain: false, preview: true });
      const names = await LM.titles(recs.items.map((r) => r.item_id));
      let rank = 0;
      recs.items.forEach((r, i) => {
        const hit = r.item_id === target;
        if (hit) rank = i + 1;
        ol.append(el("li", { class: hit ? "hit" : "", "data-item-id": r.item_id }, (names.get(r.item_id) || r.item_id) + " (" + r.item_id + ")"));
      });
      if (!target) say(out, user + "'s top " + recs.items.length + ".");
      else if (rank) say(out, target + " is number " + rank + " in " + user + "'s list.", "ok");
      else say(out, target + " is not in " + user + "'s top " + recs.items.length + ".");
    } catch (err) {
      LM.fail(out, err);
    }
  }

  field("item-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = field("item-id").value.trim();
    if (!id) return;
    if (LM.hashParam("item") === id) show(id);
    else location.hash = "item=" + encodeURIComponent(id); // hashchange shows it
  });
  field("edit-this").addEventListener("click", () => current && fill(current));
  field("upsert-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = field("upsert-status");
    const item = {
      item_id: field("f-id").value.trim(),
      title: field("f-title").value.trim(),
      brand: field("f-brand").value.trim(),
      categories: list(field("f-categories").value),
      tags: list(field("f-tags").value),
      description: field("f-description").value.trim(),
    };
    try {
      const done = await LM.api("POST", "/v1/items", { items: [item] });
      say(out, (done.added ? "Added " : "Updated ") + item.item_id + (done.scored_from_text ? ": recommendable now, scored from its text." : ": stored, but the server has no encoder to score it from text."), "ok");
      field("item-id").value = item.item_id;
      LM.setHashParam("item", item.item_id); // no hashchange: shown just below
      await show(item.item_id);
      await check();
    } catch (err) {
      LM.fail(out, err);
    }
  });
  field("check-form").addEventListener("submit", (event) => {
    event.preventDefault();
    check();
  });
  window.addEventListener("hashchange", () => {
    const id = LM.hashParam("item");
    if (id) {
      field("item-id").value = id;
      show(id);
    }
  });

  const initial = LM.hashParam("item");
  if (initial) {
    field("item-id").value = initial;
    await show(initial);
  } else {
    field("item-id").focus();
  }
});
