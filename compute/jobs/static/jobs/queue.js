// The administrators' queue page (templates/admin/jobs/queue.html): draws the queue's
// snapshot (compute.jobs.queue.snapshot) and draws it again whenever ws/admin/queue/ sends
// a new one; the buttons POST one action each (compute/jobs/queue_page.py) and show its
// answer. Every name here (graphs, users, hosts) comes from users: it is only ever set as
// text (textContent, attributes), never as HTML.
"use strict";

(function () {
  const page = document.getElementById("queue-page");
  if (!page) return;
  const root = document.getElementById("queue-root");
  const connection = page.querySelector(".queue-connection");
  const notice = page.querySelector(".queue-message");
  const mayChange = page.dataset.mayChange === "true";
  const runUrl = (id) => `${page.dataset.runUrl}${encodeURIComponent(String(id))}/change/`;
  const csrf = () => page.querySelector("input[name=csrfmiddlewaretoken]").value;
  let current = JSON.parse(document.getElementById("queue-snapshot").textContent);

  // -- drawing -------------------------------------------------------------------------

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function ago(iso) {
    if (!iso) return "never";
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (!Number.isFinite(seconds)) return "";
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${Math.round(seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return new Date(iso).toLocaleString();
  }

  const time = (iso) => el("time", { datetime: iso || null, title: iso || null, text: ago(iso) });

  function ordinal(n) {
    const tens = n % 100, ones = n % 10;
    const suffix = tens >= 11 && tens <= 13 ? "th" : ones === 1 ? "st" : ones === 2 ? "nd" : ones === 3 ? "rd" : "th";
    return `${n}${suffix}`;
  }

  function gib(bytes) {
    return bytes ? `${(bytes / 2 ** 30).toFixed(bytes >= 10 * 2 ** 30 ? 0 : 1)} GiB` : "";
  }

  /** An action button: its form fields ride in data-* attributes. */
  function button(label, action, fields, title) {
    if (!mayChange) return null;
    return el("button", { type: "button", class: "button queue-action", title: title || null,
                          data: { action, ...fields } }, label);
  }

  const runLink = (row) => el("a", { href: runUrl(row.id) }, `#${row.id}`);

  function waitingTable(q) {
    if (!q.waiting.length) return el("p", { class: "queue-empty" }, "Nobody is waiting.");
    return el("table", { class: "queue-table", "aria-label": `Waiting in the ${q.name} queue` },
      el("thead", {}, el("tr", {},
        ["#", "Run", "Owner", "Graph", "Kind", "Priority", "Reason", "Waiting since", ""]
          .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, q.waiting.map((row) => el("tr", { data: { run: row.id, status: row.status } },
        el("td", { class: "num", title: row.position ? `${ordinal(row.position)} to start` : null }, row.position ?? ""),
        el("td", {}, runLink(row)),
        el("td", {}, row.owner),
        el("td", {}, row.graph),
        el("td", {}, row.kind),
        el("td", { class: "num" }, row.priority),
        el("td", { class: "queue-reason" }, row.reason),
        el("td", {}, time(row.created_at)),
        el("td", { class: "queue-buttons" },
          button("▲", "priority", { job: row.id, priority: row.priority + 1 }, "Raise its priority by one"),
          button("▼", "priority", { job: row.id, priority: row.priority - 1 }, "Lower its priority by one"),
          button("To front", "front", { job: row.id }, "Start it next"),
          button("Cancel", "cancel", { job: row.id }))))));
  }

  function runningTable(q) {
    if (!q.running.length) return el("p", { class: "queue-empty" }, "Nothing is running.");
    return el("table", { class: "queue-table", "aria-label": `Running in the ${q.name} queue` },
      el("thead", {}, el("tr", {},
        ["Run", "Owner", "Graph", "Kind", "Worker", "Step", "Started", ""]
          .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, q.running.map((row) => el("tr", { data: { run: row.id, status: row.status } },
        el("td", {}, runLink(row)),
        el("td", {}, row.owner),
        el("td", {}, row.graph),
        el("td", {}, row.kind),
        el("td", {}, row.worker),
        el("td", { class: "num" }, `${row.step} / ${row.total_steps}`),
        el("td", {}, time(row.started_at)),
        el("td", { class: "queue-buttons" }, button("Cancel", "cancel", { job: row.id }))))));
  }

  function queueSection(q) {
    const state = q.paused
      ? `paused${q.paused_by ? ` by ${q.paused_by}` : ""}${q.paused_at ? `, ${ago(q.paused_at)}` : ""}`
      : "running";
    return el("section", { class: `module queue-queue${q.paused ? " queue-paused" : ""}`,
                           "aria-label": `The ${q.name} queue`, data: { queue: q.name } },
      el("h2", {}, `${q.name} queue · `,
        el("span", { class: "queue-state", data: { testid: `queue-state-${q.name}` } }, state),
        " ",
        q.paused ? button("Resume", "resume", { queue: q.name }) : button("Pause", "pause", { queue: q.name },
          "Nothing new starts here; running runs go on")),
      el("h3", {}, `Waiting (${q.waiting.length}), in the order they start`),
      waitingTable(q),
      el("h3", {}, `Running (${q.running.length})`),
      runningTable(q));
  }

  function workersSection(workers) {
    const body = workers.length
      ? el("table", { class: "queue-table", "aria-label": "Workers" },
        el("thead", {}, el("tr", {},
          ["Worker", "Host", "Queues", "Pool", "Device", "Runs", "Last heartbeat", "State", ""]
            .map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, workers.map((w) => el("tr", { class: w.lost ? "queue-lost" : null, data: { worker: w.hostname } },
          el("td", {}, w.hostname),
          el("td", {}, w.host),
          el("td", {}, (w.queues || []).join(", ")),
          el("td", {}, `${w.pool}${w.concurrency ? ` × ${w.concurrency}` : ""}`),
          el("td", {}, [w.device || "CPU", gib(w.memory)].filter(Boolean).join(" · ")),
          el("td", {}, (w.runs || []).length
            ? (w.runs || []).flatMap((id, i) => [i ? ", " : "", el("a", { href: runUrl(id) }, `#${id}`)])
            : "idle"),
          el("td", {}, time(w.heartbeat_at)),
          el("td", { class: "queue-worker-state" },
            w.lost ? el("strong", { class: "queue-lost-label" }, "LOST (no heartbeat)") : w.draining ? "draining" : "online"),
          el("td", { class: "queue-buttons" },
            w.draining || w.lost ? null : button("Drain", "drain", { worker: w.hostname },
              "It finishes its runs and takes no more"))))))
      : el("p", { class: "queue-empty" }, "No worker is online.");
    return el("section", { class: "module queue-workers", "aria-label": "Workers" },
      el("h2", {}, `Workers (${workers.length})`), body);
  }

  /** A button's identity across redraws: its label, action and subject (not its priority). */
  const buttonKey = (b) => JSON.stringify([b.textContent, b.dataset.action, b.dataset.job, b.dataset.queue, b.dataset.worker]);

  function focusKey() {
    const focused = document.activeElement;
    return focused && root.contains(focused) && focused.matches("button.queue-action") ? buttonKey(focused) : null;
  }

  /** Draw a snapshot unless the one drawn is newer (an action's answer can overtake the
   * socket's snapshot of the moment before it). */
  function update(snapshot) {
    if (!(Date.parse(snapshot.at) < Date.parse(current.at))) draw(snapshot);
  }

  function draw(snapshot) {
    current = snapshot;
    const key = focusKey();
    root.replaceChildren(
      ...snapshot.queues.map(queueSection),
      workersSection(snapshot.workers),
      el("p", { class: "queue-at" }, "As of ", time(snapshot.at)));
    if (key) {
      const again = [...root.querySelectorAll("button.queue-action")].find((b) => buttonKey(b) === key);
      if (again) again.focus();
    }
  }

  // -- actions -------------------------------------------------------------------------

  function say(text, error) {
    notice.hidden = !text;
    notice.textContent = text || "";
    notice.classList.toggle("queue-error", !!error);
  }

  async function act(target) {
    const { action, ...fields } = target.dataset;
    const body = new URLSearchParams(fields);
    target.disabled = true;
    try {
      const response = await fetch(page.dataset.actionUrl.replace("ACTION", encodeURIComponent(action)), {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf(), Accept: "application/json" },
      });
      let answer = null;
      try { answer = await response.json(); } catch { /* an HTML error page */ }
      if (!response.ok) {
        say(answer && answer.error ? answer.error : `the action failed (HTTP ${response.status})`, true);
        return;
      }
      say(answer.message, false);
      update(answer.snapshot);
    } catch (error) {
      say(`the action could not be sent: ${error}`, true);
    } finally {
      target.disabled = false;
    }
  }

  root.addEventListener("click", (event) => {
    const target = event.target.closest("button.queue-action");
    if (target) act(target);
  });

  // -- live ----------------------------------------------------------------------------

  /** While the socket is down: the snapshot over HTTP, so the page does not go stale. */
  async function fetchSnapshot() {
    try {
      const response = await fetch(page.dataset.snapshotUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) update(await response.json());
    } catch { /* the server is away: the next try will tell */ }
  }

  let retry = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${page.dataset.socket}`);
    socket.addEventListener("open", () => { retry = 1000; connection.textContent = "live"; page.dataset.live = "true"; });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === "snapshot") update(message.snapshot);
      else if (message.type === "error") say(message.error, true);
    });
    socket.addEventListener("close", (event) => {
      page.dataset.live = "false";
      if (event.code === 4401 || event.code === 4403) {
        connection.textContent = "not live: reload the page after logging in again";
        return;
      }
      connection.textContent = `connection lost; reconnecting in ${Math.round(retry / 1000)} s…`;
      fetchSnapshot();
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    });
  }

  draw(current);
  connect();
  // Relative times ("12 s ago") move on between snapshots.
  setInterval(() => {
    for (const t of root.querySelectorAll("time[datetime]")) t.textContent = ago(t.getAttribute("datetime"));
  }, 5000);
})();
