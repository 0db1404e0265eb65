/* Log-in page: check a pasted key against the API, then keep it in sessionStorage. */
"use strict";

(() => {
  const form = document.getElementById("login-form");
  const input = document.getElementById("api-key");
  const status = document.getElementById("login-status");
  const anonymous = document.getElementById("anonymous");

  function next() {
    const target = LM.hashParam("next");
    // Only a dashboard path: never an address elsewhere.
    return target && target.startsWith("/ui") && !target.startsWith("//") ? target : "/ui";
  }

  async function probe(withKey) {
    try {
      await LM.api("GET", "/v1/models/current", undefined, withKey);
      return null;
    } catch (err) {
      return err;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    LM.say(status, "Checking the key…");
    const err = await probe(key);
    if (err === null) {
      LM.setKey(key);
      location.assign(next());
    } else if (err.status === 403) {
      LM.setKey(key);
      LM.say(status, "Logged in, but this key cannot read (" + err.message + "): pages will show that error; actions within its scopes work. ", "ok");
      status.append(LM.el("a", { href: next() }, "Continue"));
    } else {
      input.value = "";
      LM.fail(status, err);
      input.focus();
    }
  });

  anonymous.addEventListener("click", () => {
    LM.setKey("");
    location.assign(next());
  });

  // A server started with --allow-anonymous answers without a key: offer to go on without one.
  probe("").then((err) => {
    anonymous.hidden = err !== null;
    LM.ready();
  });
  input.focus();
})();
