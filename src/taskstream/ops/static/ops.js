// The operator dashboard: polls /ops/api every 2 s with the token the page was served with.
"use strict";

const REFRESH_MS = 2000;
const token = document.querySelector('meta[name="ops-token"]').content;
let previous = null; // {at, committed} of the last overview: throughput is their rate

function $(id) { return document.getElementById(id); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    cache: "no-store",
  });
  if (response.status === 401) throw new Error("access expired: open a new ticket (POST /ops/tickets)");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? "–" : String(value);
  if (className) td.className = className;
  return td;
}

function fill(tbodyId, items, render) {
  const body = $(tbodyId);
  body.replaceChildren();
  for (const item of items) render(body.insertRow(), item);
}

function text(id, value) {
  $(id).textContent = value === null || value === undefined ? "–" : String(value);
}

function renderOverview(o) {
  const deps = $("dependencies");
  deps.replaceChildren();
  for (const [name, dep] of Object.entries(o.dependencies)) {
    const li = document.createElement("li");
    li.className = dep.status;
    li.dataset.dependency = name;
    li.textContent = `${name}: ${dep.status}`;
    li.title = dep.detail || "";
    deps.append(li);
  }

  const lag = o.lag;
  text("lag-group", lag.group);
  text("lag-total", lag.total);
  text("group-state", lag.groupState);
  text("lag-error", lag.error || "");
  const at = Date.parse(o.generatedAt);
  if (lag.committedTotal !== null && previous && at > previous.at) {
    const rate = (lag.committedTotal - previous.committed) / ((at - previous.at) / 1000);
    text("throughput", Math.max(0, rate).toFixed(1));
  }
  if (lag.committedTotal !== null) previous = { at, committed: lag.committedTotal };
  fill("partitions", lag.partitions, (row, p) => {
    if (p.lag > 0) row.className = "alert";
    row.dataset.partition = p.partition;
    cell(row, p.partition, "num"); cell(row, p.committed, "num"); cell(row, p.end, "num"); cell(row, p.lag, "num");
  });
  fill("members", lag.members, (row, m) => {
    cell(row, m.memberId, "code");
    cell(row, [m.clientId, m.host].filter(Boolean).join(" / ") || "–");
    cell(row, m.partitions === null ? "not reported by the broker" : m.partitions.join(", "));
    cell(row, m.lag, "num");
  });

  const files = o.attachmentLag;
  text("attachment-lag-group", files.group);
  text("attachment-lag-total", files.total);
  text("attachment-group-state", files.groupState);
  text("attachment-members", files.members.length);
  text("attachment-lag-error", files.error || "");
  fill("attachment-partitions", files.partitions, (row, p) => {
    if (p.lag > 0) row.className = "alert";
    cell(row, p.partition, "num"); cell(row, p.committed, "num"); cell(row, p.end, "num"); cell(row, p.lag, "num");
  });

  text("applied", o.commands.applied);
  text("rejected", o.commands.rejected);
  text("outbox-backlog", o.outbox.backlog);
  text("outbox-age", o.outbox.oldestAgeS === null ? 0 : o.outbox.oldestAgeS);
  text("db-error", o.commands.error || "");

  text("queues-error", o.queues.error || "");
  fill("queues", o.queues.queues, (row, q) => {
    row.dataset.queue = q.name;
    if (q.kind === "dead-letter" && q.messages) row.className = "alert";
    cell(row, q.name, "code"); cell(row, q.kind);
    cell(row, q.messages === null ? "missing" : q.messages, "num"); cell(row, q.consumers, "num");
  });

  text("webhooks-error", o.webhooks.error || "");
  fill("webhooks", o.webhooks.failing, (row, w) => {
    cell(row, w.url, "code"); cell(row, w.projectId, "code");
    cell(row, w.retrying, "num"); cell(row, w.dead, "num"); cell(row, w.lastStatusCode, "num");
    cell(row, w.lastError, "code"); cell(row, w.lastFailureAt);
  });
}

function renderDeadLetters(d) {
  text("dlq-topic", d.topic);
  text("dlq-count", d.count);
  text("dlq-error", d.error || "");
  $("replay-all").disabled = d.count === 0;
  fill("dead-letters", d.letters, (row, letter) => {
    row.dataset.deadLetter = letter.id;
    cell(row, letter.id, "code");
    cell(row, `${letter.originalTopic}[${letter.originalPartition}]@${letter.originalOffset}`, "code");
    cell(row, letter.failedAt);
    cell(row, letter.error, "code");
    const body = cell(row, letter.value && letter.value.length > 160 ? `${letter.value.slice(0, 160)}…` : letter.value, "code");
    body.title = letter.value || "";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Replay";
    button.dataset.replay = letter.id;
    button.addEventListener("click", () => replay({ ids: [letter.id] }));
    row.insertCell().append(button);
  });
}

async function replay(request) {
  text("replay-status", "replaying…");
  try {
    const result = await api("/ops/api/dead-letters/replay", { method: "POST", body: JSON.stringify(request) });
    text("replay-status", `replayed ${result.replayed.join(", ") || "nothing"}`);
  } catch (error) {
    text("replay-status", `replay failed: ${error.message}`);
  }
  refresh();
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const status = $("status");
  try {
    const [overview, letters] = await Promise.all([api("/ops/api/overview"), api("/ops/api/dead-letters")]);
    renderOverview(overview);
    renderDeadLetters(letters);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.className = "";
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (error) {
    status.textContent = `not updated: ${error.message}`;
    status.className = "stale";
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

$("replay-all").addEventListener("click", () => {
  if (window.confirm("Re-publish every dead letter to the commands topic?")) replay({ all: true });
});
refresh();
