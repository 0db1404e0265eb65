/* Reports: the HTML reports in the server's reports folder, shown in a frame that runs no script. */
"use strict";

LM.start(async () => {
  const { el, say } = LM;
  const status = document.getElementById("reports-status");
  const tbody = document.querySelector("#reports tbody");
  const section = document.getElementById("viewer-section");
  const frame = document.getElementById("viewer");
  const download = document.getElementById("download");
  let url = null;

  function release() {
    if (url) URL.revokeObjectURL(url);
    url = null;
  }

  async function view(report) {
    say(status, "Loading " + report.path + "…");
    try {
      // Fetched with the key, then shown from a blob: a frame's own request could not send it.
      const response = await LM.request("GET", "/v1/reports/file?path=" + encodeURIComponent(report.path));
      const blob = new Blob([await response.text()], { type: "text/html" });
      release();
      url = URL.createObjectURL(blob);
      frame.src = url;
      frame.title = "Report: " + report.title;
      download.href = url;
      download.download = report.path.split("/").pop();
      section.hidden = false;
      say(status, "Showing " + report.path + ".");
      document.getElementById("h-viewer").textContent = report.title;
    } catch (err) {
      LM.fail(status, err);
    }
  }

  document.getElementById("close-viewer").addEventListener("click", () => {
    release();
    frame.removeAttribute("src");
    section.hidden = true;
  });

  try {
    const data = await LM.api("GET", "/v1/reports");
    if (!data.configured) {
      say(status, "No reports folder is set: start the server with a reports folder (Settings.reports_dir) to list the HTML reports that lmrec evaluate, tune and simulate write.");
      return;
    }
    for (const r of data.reports) {
      tbody.append(el("tr", { "data-report": r.path },
        el("td", {}, r.title),
        el("td", {}, el("code", {}, r.path)),
        el("td", {}, LM.when(r.modified)),
        el("td", {}, LM.bytes(r.bytes)),
        el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => view(r) }, "View"))));
    }
    say(status, data.reports.length ? data.reports.length + " reports" + (data.truncated ? " (the newest; more are in the folder)." : ".") : "The reports folder holds no HTML reports yet.");
  } catch (err) {
    LM.fail(status, err);
  }
});
