// Sluice's dashboard: start a job, follow it live, take its report.
//
// Plain ES2020, no framework, no build. Every URL is relative to the page's
// <base> (the API's own path, "/api/" behind API Gateway's stage), data only
// ever reaches the page through textContent, and no handler is inline, so the
// page runs under a strict Content-Security-Policy.
//
// Every job route needs the tenant's API key (`Authorization: Bearer <key>`;
// the WebSocket opens with a one-time ticket the key buys). The page takes it from a `#key=` link or its
// sign-in form, keeps it in localStorage until "Sign out", and never writes
// it into the page.

const config = JSON.parse(document.getElementById("config").textContent);

const RESULT_ROWS_SHOWN = 1000;   // DOM rows kept; past this only the count grows
const POLL_MS = 1000;
const RECENT_JOBS_MS = 10000;
const RECENT_JOBS_SHOWN = 20;
const SUBSCRIBE_WAIT_MS = 3000;   // how long an upload waits for the subscription to be confirmed
const CONNECT_WAIT_MS = 3000;
const RECONNECT_MS = [1000, 2000, 5000, 10000, 30000];
const FINAL = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);
const WITH_REPORT = new Set(["completed", "completed_with_errors"]);
const FILE_HINT = "Choose a file or drop it here: CSV, Excel, or a zip of documents.";
// The results table's columns: a document names its file, the code found and
// a link; a table's row has only its number.
const DOCUMENT_COLUMNS = [["kind", "Kind"], ["number", "#"], ["file", "File"], ["code", "Code"],
                          ["detail", "Status or error"], ["link", "Link"]];
const ROW_COLUMNS = [["kind", "Kind"], ["number", "Row"], ["detail", "Status or error"]];
// A page job's results: the page, what was found on it (an NPI), how sure.
const PAGE_COLUMNS = [["kind", "Kind"], ["number", "Page"], ["code", "Found"],
                      ["detail", "Status or error"]];
const COLUMNS_BY_ITEM = { documents: DOCUMENT_COLUMNS, pages: PAGE_COLUMNS };

const KEY_STORAGE = "sluice.apiKey";
const KEY_SHAPE = /^slk_[A-Za-z0-9_-]{43}$/;   // chalicelib/auth/keys.py's
const REFUSED = new Set([401, 403]);            // no key, or one the API does not take

const $ = (id) => document.getElementById(id);
const processors = new Map();     // name -> {description, item_label, options}
const session = { key: null, recentTimer: null };

// -- REST ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.refused = REFUSED.has(status);
  }
}

function apiUrl(path) {
  return new URL(path, document.baseURI).href;
}

// fetch() with the key. A refusal of the key signs the page out, unless it
// answers a key already replaced.
async function apiFetch(path, init = {}) {
  const key = session.key;
  const headers = new Headers(init.headers || {});
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(apiUrl(path), { ...init, headers });
  if (REFUSED.has(response.status) && key && key === session.key) keyRefused();
  return response;
}

async function api(path, init = {}) {
  const response = await apiFetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw apiError(response, body, `${init.method || "GET"} ${path}`);
  return body;
}

function apiError(response, body, what) {
  const message = REFUSED.has(response.status) ? "the API refused the key"
    : body.error || `${what} answered ${response.status}`;
  return new ApiError(message, response.status,
                      Number(body.retry_after || response.headers.get("Retry-After")) || 0);
}

// -- the form -----------------------------------------------------------------

async function loadProcessors() {
  const select = $("processor");
  try {
    const { processors: list } = await api("processors");
    for (const p of list) {
      processors.set(p.name, p);
      select.append(new Option(p.name, p.name));
    }
    renderOptions();
  } catch (err) {
    showFormError(`The processors could not be loaded: ${err.message}`);
  }
}

function renderOptions() {
  const chosen = processors.get($("processor").value);
  $("processor-description").textContent = chosen ? chosen.description : "";
  const options = chosen ? chosen.options : [];
  const main = options.filter((o) => !o.advanced);
  const advanced = options.filter((o) => o.advanced);
  $("options").replaceChildren(...main.map(optionField));
  $("advanced-options").replaceChildren(...advanced.map(optionField));
  $("options").hidden = main.length === 0;
  $("advanced-panel").hidden = advanced.length === 0;
  $("options-panel").hidden = options.length === 0;
}

function optionField(option) {
  const id = `option-${option.name}`;
  const wrap = document.createElement("div");
  wrap.className = `option option-${option.type}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = sentenceCase(option.name);
  const help = document.createElement("p");
  help.className = "hint";
  help.id = `${id}-help`;
  help.textContent = option.help;
  const given = option.default !== null && option.default !== undefined;

  let input;
  if (option.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(option.default);
  } else if (option.type === "choice") {
    input = document.createElement("select");
    if (!given) input.append(new Option("(default)", ""));
    for (const choice of option.choices || []) input.append(new Option(choice, choice));
    if (given) input.value = option.default;
  } else if (option.type === "list") {
    input = document.createElement("textarea");
    input.rows = 2;
    input.placeholder = "Separated by commas or new lines";
    input.spellcheck = false;
  } else {
    input = document.createElement("input");
    input.type = option.type === "integer" || option.type === "number" ? "number" : "text";
    if (option.type === "integer") input.step = "1";
    if (option.type === "number") input.step = "any";
    if (given) input.placeholder = String(option.default);
    input.spellcheck = false;
  }
  input.id = id;
  input.name = option.name;
  input.dataset.type = option.type;
  input.setAttribute("aria-describedby", help.id);
  if (option.type === "boolean") {
    const line = document.createElement("div");
    line.className = "check";
    line.append(input, label);
    wrap.append(line, help);
  } else {
    wrap.append(label, input, help);
  }
  return wrap;
}

function sentenceCase(name) {
  const words = name.replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// The options the user set, typed as the processor expects; empty fields are
// left out so the processor's defaults apply.
function collectOptions() {
  const options = {};
  for (const input of $("options-panel").querySelectorAll("[data-type]")) {
    const { type } = input.dataset;
    const label = sentenceCase(input.name);
    if (type === "boolean") {
      options[input.name] = input.checked;
      continue;
    }
    const text = input.value.trim();
    if (text === "") continue;
    if (type === "integer" || type === "number") {
      const number = Number(text);
      if (!Number.isFinite(number) || (type === "integer" && !Number.isInteger(number))) {
        throw new Error(`${label} must be ${type === "integer" ? "a whole number" : "a number"}`);
      }
      options[input.name] = number;
    } else if (type === "list") {
      options[input.name] = text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
    } else if (type === "mapping") {
      options[input.name] = parseMapping(label, text);
    } else {
      options[input.name] = text;
    }
  }
  return options;
}

function parseMapping(label, text) {
  const mapping = {};
  for (const pair of text.split(",")) {
    const [key, ...rest] = pair.split("=");
    if (!key.trim() || rest.length === 0 || !rest.join("=").trim()) {
      throw new Error(`${label} takes key=value pairs separated by commas, e.g. activity=Fuel type`);
    }
    mapping[key.trim()] = rest.join("=").trim();
  }
  return mapping;
}

function showFormError(message) {
  $("form-error").textContent = message;
  $("form-error").hidden = !message;
}

function setupDropzone() {
  const zone = $("dropzone");
  const input = $("file");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showChosenFile();
    }
  });
  input.addEventListener("change", showChosenFile);
}

function showChosenFile() {
  const file = $("file").files[0];
  $("file-hint").textContent = file ? `${formatBytes(file.size)}, ready to start` : FILE_HINT;
  $("dropzone").classList.toggle("chosen", Boolean(file));
}

// Presigned POST: the file goes straight to S3, whatever its size, and its
// arrival in the bucket starts the job.
async function startJob(event) {
  event.preventDefault();
  showFormError("");
  const file = $("file").files[0];
  if (!file) {
    showFormError("Choose a file first.");
    return;
  }
  const button = $("start");
  button.disabled = true;
  let created = null;
  try {
    const processor = $("processor").value;
    const options = collectOptions();
    button.textContent = "Starting…";
    created = await api("uploads", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ filename: file.name, processor, options }),
    });
    // Follow before the upload, so no match or row error is pushed before
    // this page is listening.
    await follow({ job_id: created.job_id, filename: file.name, processor, status: created.status });
    await upload(created.upload, file, (fraction) => {
      button.textContent = `Uploading ${Math.floor(fraction * 100)} % of ${formatBytes(file.size)}…`;
    });
    refreshRecentJobs();
  } catch (err) {
    showFormError(`The job could not be started: ${err.message}`);
    if (created && current && current.job_id === created.job_id && !current.final) {
      // Without its file the job never starts: stop waiting for it.
      current.final = true;
      stopPolling();
      live.send({ action: "unsubscribe", job_id: current.job_id });
      setLiveStatus("");
      showAlert(`The file did not reach storage: ${err.message}`);
    }
  } finally {
    button.disabled = false;
    button.textContent = "Start job";
  }
}

// XMLHttpRequest rather than fetch: it reports how much of the body is sent.
function upload(target, file, onProgress) {
  const form = new FormData();
  for (const [name, value] of Object.entries(target.fields)) form.append(name, value);
  form.append("file", file);   // S3 reads every field after "file" as part of it
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", target.url);
    request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new Error(`storage answered ${request.status}${s3Message(request.responseText)}`));
    });
    request.addEventListener("error", () => reject(new Error("storage could not be reached")));
    request.send(form);
  });
}

function s3Message(xml) {
  const match = /<Message>([^<]*)<\/Message>/.exec(xml || "");
  return match ? `: ${match[1]}` : "";
}

// -- following a job ----------------------------------------------------------

let current = null;   // {job_id, filename, processor, value, final, shown, hidden, counts, pollTimer}

async function follow(job) {
  stopPolling();
  if (current && !current.final) live.send({ action: "unsubscribe", job_id: current.job_id });
  current = { job_id: job.job_id, filename: job.filename, processor: job.processor, value: 0, final: false,
              shown: 0, hidden: 0, counts: { match: 0, error: 0 }, pollTimer: null };
  resetJobView(job);
  markCurrentInRecent();
  await watch(job.job_id, "Live updates");
}

// Live updates for the job being followed, or polling when the socket is not
// there.
async function watch(jobId, words) {
  if (await live.ensureOpen()) {
    await live.subscribe(jobId);
    if (current && current.job_id === jobId && !current.final) setLiveStatus(words, "live");
  } else if (session.key) {
    startPolling(config.ws_url ? "Live updates unavailable · polling" : "Polling for updates");
  }
}

// The API and the socket answer a job of another tenant as one that does not
// exist: stop following it.
function jobGone(jobId, message) {
  if (!current || current.job_id !== jobId || current.final) return;
  current.final = true;
  stopPolling();
  live.send({ action: "unsubscribe", job_id: current.job_id });
  $("job-status").hidden = true;
  setLiveStatus("");
  showAlert(message);
}

// The job view, empty, for `job`; with no job, as the page opens.
function resetJobView(job) {
  if (job) {
    const name = document.createElement("strong");
    name.textContent = job.filename || "(unnamed file)";
    const processor = document.createElement("span");
    processor.className = "chip";
    processor.textContent = job.processor || "";
    const id = document.createElement("code");
    id.textContent = job.job_id;
    $("job-name").replaceChildren(name, processor, id);
  } else {
    $("job-name").textContent = "No job yet: start one, or choose a recent job.";
  }
  $("alert").hidden = true;
  $("finished").hidden = true;
  $("download-rows").hidden = true;
  $("download-pdf").hidden = true;
  $("totals").replaceChildren();
  setColumns(job ? COLUMNS_BY_ITEM[itemLabel()] || ROW_COLUMNS : DOCUMENT_COLUMNS);
  $("results-body").replaceChildren();
  $("results-more").hidden = true;
  $("results-empty").hidden = false;
  $("results-empty").textContent = "Matches and row errors appear here as the job finds them.";
  $("results-counts").textContent = "";
  setBar(0, true);
  $("progress").classList.remove("done", "done-with-errors", "failed");
  $("progress-counts").textContent = "";
  $("progress-rows").textContent = "";
  setLiveStatus("");
  if (job) setStatus(job.status || "received");
  else $("job-status").hidden = true;
}

function onMessage(message) {
  if (!current || message.job_id !== current.job_id) {
    if (message.type === "ERROR" && !message.job_id) showAlert(message.message);
    return;
  }
  switch (message.type) {
    case "STARTED":
      setStatus("received");
      break;
    case "PROGRESS":
      showProgress(message.value, message.processed, message.total, message.rows_processed, message.status);
      break;
    case "MATCH_FOUND":
      addResult("match", message.data);
      break;
    case "ROW_ERROR":
      addResult("error", message.data);
      break;
    case "COMPLETE":
      finish(message.status, message.totals);
      break;
    case "ERROR":
      // The job failed or was cancelled, or a request about it was refused:
      // its record says which.
      showAlert(message.message);
      api(`jobs/${encodeURIComponent(message.job_id)}`).then(applyJob).catch((err) => {
        if (err.status === 404) jobGone(message.job_id, err.message);
      });
      break;
    default:
      break;
  }
}

function showProgress(value, processed, total, rows, status) {
  if (current.final) return;
  // Live and polled figures can arrive out of order; the bar never goes back.
  setBar(Math.max(current.value, Math.floor(value || 0)));
  const label = itemLabel();
  $("progress-counts").textContent = total
    ? `${(processed || 0).toLocaleString()} of ${total.toLocaleString()} ${total === 1 ? label.replace(/s$/, "") : label}`
    : "";
  // Documents are the rows of a scan; tables count rows besides chunks.
  $("progress-rows").textContent = label === "chunks" && rows ? `${rows.toLocaleString()} rows processed` : "";
  if (status) setStatus(status);
}

function itemLabel() {
  return (processors.get(current.processor) || {}).item_label || "chunks";
}

function setBar(value, reset = false) {
  if (!reset && current) current.value = value;
  const bar = $("progress");
  bar.setAttribute("aria-valuenow", String(value));
  bar.setAttribute("aria-valuetext", `${value} %`);
  $("progress-fill").style.width = `${value}%`;
  $("progress-percent").textContent = `${value} %`;
}

function setStatus(status) {
  const badge = $("job-status");
  badge.hidden = false;
  badge.textContent = statusWords(status);
  badge.className = `badge status-${status}`;
}

function statusWords(status) {
  return String(status).replaceAll("_", " ");
}

function finish(status, totals, error) {
  if (current.final) return;
  current.final = true;
  stopPolling();
  const jobPath = `jobs/${encodeURIComponent(current.job_id)}`;
  if (WITH_REPORT.has(status)) {
    setBar(100);
    // The buttons ask the API for the files when clicked (see download()).
    $("download-rows").textContent = `${sentenceCase(itemLabel() === "chunks" ? "rows" : itemLabel())} (CSV)`;
    $("finished").hidden = false;
    // Only processors that answer per row leave a rows file; only page jobs
    // asked for one have a PDF.
    const jobId = current.job_id;
    api(jobPath).then((job) => {
      if (!current || current.job_id !== jobId) return;
      $("download-rows").hidden = !(job.outputs || {}).rows;
      $("download-pdf").hidden = !(job.outputs || {}).pdf;
    }).catch(() => {});
  }
  $("progress").classList.add(status === "completed" ? "done" : WITH_REPORT.has(status) ? "done-with-errors" : "failed");
  if (error) showAlert(error);
  if (current.shown === 0 && current.hidden === 0) {
    $("results-empty").textContent = live.isOpen() && !current.polled
      ? "No matches or row errors came in while this page followed the job; the report has every one."
      : "Matches and row errors come with live updates; the report has every one.";
  }
  setStatus(status);
  showTotals(totals || {});
  setLiveStatus(live.isOpen() && !current.polled ? "Finished · live" : "Finished", "");
  refreshRecentJobs();
}

// Totals every processor may report, in the words the page shows them.
const TOTAL_WORDS = [
  ["total_processed", "processed"], ["total_matches", "matches"], ["documents_with_codes", "with codes"],
  ["unreadable_documents", "unreadable"], ["t_co2e", "t CO2e"], ["rows_calculated", "rows calculated"],
  ["rows_rejected", "rows rejected"], ["rows", "rows"], ["columns", "columns"],
  ["columns_with_issues", "columns with issues"], ["total_pages", "pages"], ["npis_found", "NPIs"],
  ["npi_percentage", "% of pages with an NPI"], ["pages_failed", "pages unreadable"],
];

function showTotals(totals) {
  const list = $("totals");
  list.replaceChildren();
  for (const [key, words] of TOTAL_WORDS) {
    if (typeof totals[key] !== "number") continue;
    // A scan's rejected rows are its unreadable documents, a page job's its
    // unreadable pages: already shown.
    if (key === "rows_rejected" && ("unreadable_documents" in totals || "pages_failed" in totals)) continue;
    const item = document.createElement("div");
    const value = document.createElement("dd");
    value.textContent = totals[key].toLocaleString();
    const term = document.createElement("dt");
    term.textContent = words;
    item.append(term, value);
    list.append(item);
  }
}

function showAlert(text) {
  const alert = $("alert");
  alert.textContent = text;
  alert.hidden = false;
}

function setLiveStatus(text, state = "") {
  const line = $("live-status");
  line.textContent = text;
  line.className = `live-status ${state}`;
}

// -- downloads ------------------------------------------------------------------

// A link to the API cannot carry the key, so each button asks the API for
// its file when clicked. The report, rows and PDF routes answer `?link=1`
// with a fresh presigned S3 link, which S3 serves as an attachment: going
// there downloads the file and leaves this page where it is. The result
// route answers with the JSON itself (or, when it is large, a 303 to S3 that
// fetch follows, leaving the key behind): it is saved from memory.
const DOWNLOADS = { download: ["report", "report"], "download-rows": ["rows", "rows file"],
                    "download-pdf": ["pdf", "PDF"], "download-result": ["result", "result"] };

async function download(event) {
  const button = event.currentTarget;
  const [route, words] = DOWNLOADS[button.id];
  if (!current) return;
  const jobPath = `jobs/${encodeURIComponent(current.job_id)}`;
  button.disabled = true;
  try {
    if (route === "result") {
      const response = await apiFetch(`${jobPath}/result`);
      if (!response.ok) throw apiError(response, await response.json().catch(() => ({})), "the result");
      saveBlob(await response.blob(), `${baseName(current.filename)}_result.json`);
    } else {
      const { download_url: url } = await api(`${jobPath}/${route}?link=1`);
      if (!/^https?:\/\//i.test(url || "")) throw new Error("the API gave no link to the file");
      window.location.assign(url);
    }
  } catch (err) {
    if (!err.refused) showAlert(`The ${words} could not be downloaded: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(new Blob([blob], { type: "application/json" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// sales.csv -> sales, as the API names a job's files (sales_report.xlsx).
function baseName(filename) {
  const name = filename || "job";
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

// -- the results table --------------------------------------------------------

function addResult(kind, data) {
  $("results-empty").hidden = true;
  if (current.shown >= RESULT_ROWS_SHOWN) {
    current.hidden += 1;
    $("results-more").hidden = false;
    $("results-more").textContent = `${current.hidden.toLocaleString()} more not shown; the report has them all.`;
  } else {
    current.shown += 1;
    $("results-body").append(resultRow(kind, data));
  }
  const { counts } = current;
  counts[kind] += 1;
  $("results-counts").textContent = [
    counts.match ? plural(counts.match, "match", "matches") : "",
    counts.error ? plural(counts.error, "row error", "row errors") : "",
  ].filter(Boolean).join(" · ");
}

function setColumns(columns) {
  if (current) current.columns = columns.map(([key]) => key);
  $("results-columns").replaceChildren(...columns.map(([key]) => {
    const col = document.createElement("col");
    col.className = `col-${key}`;
    return col;
  }));
  const head = document.createElement("tr");
  for (const [key, title] of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    if (key === "number") th.className = "num";
    head.append(th);
  }
  $("results-head").replaceChildren(head);
}

// Every event numbers its row, document or page in `row`. A scan's names
// its document (`file_name` for a match, `document` for an error) and the
// code found; a page job's match gives what it found in `value` with its
// `score` (higher beside the word "NPI").
function resultRow(kind, data) {
  const tag = document.createElement("span");
  tag.className = `tag tag-${kind}`;
  tag.textContent = kind === "match" ? "Match" : "Row error";
  const file = data.file_name ?? data.document ?? null;
  // Errors often start with the file's name, which has its own column.
  const error = file && String(data.error ?? "").startsWith(`${file}: `) ? data.error.slice(file.length + 2) : data.error;
  const cells = {
    kind: cell(null, "kind", tag),
    number: cell(data.row, "num"),
    file: cell(file, "file"),
    code: cell(data.hole_code ?? data.value, "code"),
    detail: cell(kind === "match" ? data.status ?? matchScore(data) : error, "detail"),
    link: linkCell(data.pdf_link),
  };
  const row = document.createElement("tr");
  row.className = kind === "match" ? "result-match" : "result-error";
  row.append(...current.columns.map((key) => cells[key]));
  return row;
}

function matchScore(data) {
  if (typeof data.score !== "number") return null;
  return `${data.kind ? data.kind.toUpperCase() + ", " : ""}score ${data.score.toFixed(2)}`;
}

// A cell showing `value` ("—" when there is none), or `child` when given;
// long text is cut to the column, so its title holds it whole.
function cell(value, className = "", child = null) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (child) {
    td.append(child);
  } else if (value === undefined || value === null || value === "") {
    td.textContent = "—";
  } else {
    td.textContent = String(value);
    td.title = String(value);
  }
  return td;
}

function linkCell(url) {
  if (!url || !/^https?:\/\//i.test(url)) return cell(null);
  const a = document.createElement("a");
  a.href = url;
  a.textContent = "Open";
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  const td = document.createElement("td");
  td.append(a);
  return td;
}

// -- polling, when there is no live channel ----------------------------------

function startPolling(reason) {
  if (!current || current.final || current.pollTimer) return;
  current.polled = true;
  setLiveStatus(reason, "warning");
  const jobId = current.job_id;
  const tick = async () => {
    if (!current || current.job_id !== jobId || current.final) return;
    let wait = POLL_MS;
    try {
      applyJob(await api(`jobs/${encodeURIComponent(jobId)}`));
    } catch (err) {
      if (err.status === 404) {
        jobGone(jobId, err.message);
        return;
      }
      // Asked too often (the API throttles status queries): wait as told.
      if (err.retryAfter) wait = err.retryAfter * 1000;
      if (!err.refused) setLiveStatus(`${reason} · last poll failed: ${err.message}`, "warning");
    }
    if (current && current.job_id === jobId && !current.final && current.pollTimer) {
      current.pollTimer = setTimeout(tick, wait);
    }
  };
  current.pollTimer = setTimeout(tick, 0);
}

function stopPolling() {
  if (current && current.pollTimer) clearTimeout(current.pollTimer);
  if (current) current.pollTimer = null;
}

// The job as GET /jobs/{id} shows it, in the live messages' terms.
function applyJob(job) {
  if (!current || job.job_id !== current.job_id || current.final) return;
  const p = job.progress || {};
  const total = p.items_total || p.chunks_total || 0;
  const processed = p.items_total ? Math.min(p.rows_processed, p.items_total) : p.chunks_done + p.chunks_failed;
  const final = FINAL.has(job.status);
  showProgress(final && WITH_REPORT.has(job.status) ? 100 : p.percent || 0, final ? Math.max(processed, total) : processed,
               total, p.rows_processed, job.status);
  if (final) finish(job.status, job.totals, job.error);
}

// -- the WebSocket ------------------------------------------------------------

// One socket for the page, opened with a one-time ticket the API gives for
// the key (a browser cannot set headers on a WebSocket, and a URL is no place
// for the key: proxies and logs keep URLs). When it drops, the job being
// followed is polled and the socket is reopened, slower and slower; once it
// is back the job is subscribed to again and polling stops. Signed out, it
// stays closed.
class LiveChannel {
  constructor(url) {
    this.url = url;
    this.socket = null;
    this.opening = null;
    this.waiters = new Map();
    this.retries = 0;
    this.retryTimer = null;
    this.running = false;
  }

  start() {
    this.running = true;
    this.retries = 0;
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    const { socket } = this;
    this.socket = null;
    if (socket) socket.close(1000, "signed out");
  }

  // POST /live/tickets, with the key in its header as on every call: a
  // ticket opens one socket within a minute and is worth nothing after.
  async ticketUrl() {
    const { ticket } = await api("live/tickets", { method: "POST" });
    const url = new URL(this.url);
    url.searchParams.set("ticket", ticket);
    return url.href;
  }

  isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  // Resolves true once the socket is open; false when there is none to open
  // or it does not open in time.
  ensureOpen() {
    if (!this.url || !this.running || !session.key) return Promise.resolve(false);
    if (this.isOpen()) return Promise.resolve(true);
    if (!this.opening) this.opening = this.open().finally(() => { this.opening = null; });
    return this.opening;
  }

  async open() {
    const key = session.key;
    let url;
    try {
      url = await this.ticketUrl();
    } catch {
      // The API refused the key (the page is signed out already) or could
      // not be reached: try again later, as after a drop.
      if (key === session.key) this.lost(null);
      return false;
    }
    if (!this.running || key !== session.key) return false;
    return new Promise((resolve) => {
      let socket;
      try {
        socket = new WebSocket(url);
      } catch {
        resolve(false);
        return;
      }
      this.socket = socket;
      let opened = false;
      const timer = setTimeout(() => resolve(false), CONNECT_WAIT_MS);
      socket.addEventListener("open", () => {
        opened = true;
        clearTimeout(timer);
        this.retries = 0;
        showConnection("Live", "live");
        resolve(true);
        this.resume();
      });
      socket.addEventListener("message", (event) => this.receive(event.data));
      socket.addEventListener("close", () => {
        clearTimeout(timer);
        resolve(false);
        // A socket refused before it opens (403, a key it does not take)
        // looks, to a page, like one that could not be reached: the API
        // says which it was, signing the page out if it was the key.
        if (!opened && this.socket === socket && key === session.key) api("jobs?limit=1").catch(() => {});
        this.lost(socket);
      });
    });
  }

  lost(socket) {
    if (this.socket !== socket || !this.running) return;
    this.socket = null;
    showConnection("Offline · polling", "offline");
    if (current && !current.final) startPolling("Live updates lost · polling");
    clearTimeout(this.retryTimer);
    const wait = RECONNECT_MS[Math.min(this.retries, RECONNECT_MS.length - 1)];
    this.retries += 1;
    this.retryTimer = setTimeout(() => this.ensureOpen(), wait);
  }

  // Back after a drop: follow the job live again. Messages sent while the
  // socket was down are gone, but the subscription's answer brings the
  // progress, and the end if the job ended meanwhile.
  async resume() {
    if (!current || current.final || !current.pollTimer) return;
    const jobId = current.job_id;
    await this.subscribe(jobId);
    if (current && current.job_id === jobId && !current.final && this.isOpen()) {
      stopPolling();
      setLiveStatus("Live updates (resumed)", "live");
    }
  }

  async subscribe(jobId) {
    const confirmed = this.waitFor(jobId, SUBSCRIBE_WAIT_MS);
    this.send({ action: "subscribe", job_id: jobId });
    return confirmed;
  }

  send(message) {
    if (this.isOpen()) this.socket.send(JSON.stringify(message));
  }

  // Resolves when the first message about the job arrives (the answer to a
  // subscribe), or after `ms` regardless.
  waitFor(jobId, ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(jobId);
        resolve(false);
      }, ms);
      this.waiters.set(jobId, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    const waiter = this.waiters.get(message.job_id);
    if (waiter) {
      this.waiters.delete(message.job_id);
      waiter();
    }
    onMessage(message);
  }
}

const live = new LiveChannel(config.ws_url);

async function goLive() {
  live.start();
  if (!config.ws_url) {
    showConnection("Polling · no live channel", "offline");
    return false;
  }
  showConnection("Connecting…", "connecting");
  const open = await live.ensureOpen();
  if (!open && !live.isOpen() && session.key) showConnection("Offline · polling", "offline");
  return open;
}

function showConnection(text, state) {
  const badge = $("connection");
  badge.textContent = text;
  badge.className = `connection ${state}`;
}

// -- recent jobs --------------------------------------------------------------

// The signed-in tenant's jobs (the API lists no other). Says how it went:
// "ok", "refused" (the key: the page is signed out), "failed" or "signed out".
async function refreshRecentJobs() {
  const { key } = session;
  if (!key) return "signed out";
  let jobs;
  try {
    ({ jobs } = await api(`jobs?limit=${RECENT_JOBS_SHOWN}`));
  } catch (err) {
    if (err.refused) return "refused";
    if (key === session.key) $("recent-hint").textContent = `Recent jobs could not be loaded: ${err.message}`;
    return "failed";
  }
  if (key !== session.key) return "signed out";   // an answer for a key since replaced
  $("recent-jobs").replaceChildren(...jobs.map(recentJobItem));
  $("recent-hint").textContent = jobs.length ? "Choose a job to follow it." : "No jobs yet.";
  // A final status the live channel did not bring (a push lost on the way).
  const mine = current && !current.final && jobs.find((j) => j.job_id === current.job_id);
  if (mine && FINAL.has(mine.status)) applyJob(mine);
  return "ok";
}

function recentJobItem(job) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "job-item";
  button.dataset.jobId = job.job_id;
  if (current && current.job_id === job.job_id) button.setAttribute("aria-current", "true");
  const name = document.createElement("span");
  name.className = "job-file";
  name.textContent = job.filename;
  name.title = job.filename;
  const meta = document.createElement("span");
  meta.className = "job-meta";
  const percent = FINAL.has(job.status) ? "" : ` · ${(job.progress || {}).percent || 0} %`;
  meta.textContent = `${job.processor} · ${formatTime(job.created_at)}${percent}`;
  const badge = document.createElement("span");
  badge.className = `badge status-${job.status}`;
  badge.textContent = statusWords(job.status);
  button.append(name, badge, meta);
  button.addEventListener("click", () => follow(job));
  item.append(button);
  return item;
}

function markCurrentInRecent() {
  for (const button of $("recent-jobs").querySelectorAll(".job-item")) {
    if (current && button.dataset.jobId === current.job_id) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

// -- formatting ---------------------------------------------------------------

function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const today = when.toDateString() === new Date().toDateString();
  return today ? when.toLocaleTimeString([], { timeStyle: "short" })
    : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// -- signing in ------------------------------------------------------------------

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;   // storage blocked: the key lasts as long as this page
  }
}

function rememberKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // storage blocked: the key lasts as long as this page
  }
}

function forgetKey() {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing was kept
  }
}

// A key in the address (`#key=...`, the link `make run` prints), taken out of
// it at once, so that it stays out of the tab's history and out of any link
// copied from the address bar. A fragment never reaches a server.
function keyFromAddress() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (!fragment.has("key")) return null;
  const key = fragment.get("key").trim();
  fragment.delete("key");
  const rest = fragment.toString();
  const { pathname, search } = window.location;
  window.history.replaceState(window.history.state, "", `${pathname}${search}${rest ? `#${rest}` : ""}`);
  return key;
}

function useKey(key, fromLink) {
  if (KEY_SHAPE.test(key)) {
    signIn(key);
  } else if (fromLink) {
    showSignIn("The link's key is not an API key: a key is slk_ and 43 more characters.");
  } else {
    forgetKey();
    showSignIn("");
  }
}

// The first call with a key (the recent jobs) says whether the API takes it;
// until it answers, neither the form nor the dashboard shows.
async function signIn(key) {
  stopSession();
  session.key = key;
  rememberKey(key);
  const button = $("sign-in-button");
  button.disabled = true;
  button.textContent = "Signing in…";
  const answer = await refreshRecentJobs();
  button.disabled = false;
  button.textContent = "Sign in";
  if (answer === "refused" || session.key !== key) return;
  showApp();
  session.recentTimer = setInterval(refreshRecentJobs, RECENT_JOBS_MS);
  await goLive();
  // A job followed when the key was refused: followed again, with this key.
  if (current && !current.final && session.key === key) await watch(current.job_id, "Live updates (resumed)");
}

// Nothing runs for the key any more; what the page shows stays as it is.
function stopSession() {
  clearInterval(session.recentTimer);
  session.recentTimer = null;
  live.stop();
  stopPolling();
}

// The API or the socket refused the key (wrong, expired, revoked): ask for
// another. The job form keeps what was chosen in it.
function keyRefused() {
  const ending = session.key.slice(-4);
  stopSession();
  session.key = null;
  forgetKey();
  showSignIn(`The API refused the key ending in …${ending}: it is wrong, expired or revoked. Enter a valid key.`);
}

// Forget the key, and the tenant's jobs with it.
function signOut() {
  stopSession();
  session.key = null;
  forgetKey();
  current = null;
  resetJobView(null);
  $("recent-jobs").replaceChildren();
  $("recent-hint").textContent = "Choose a job to follow it.";
  $("job-form").reset();
  renderOptions();
  showChosenFile();
  showFormError("");
  showSignIn("");
}

function submitKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (KEY_SHAPE.test(key)) {
    signIn(key);
    return;
  }
  showSignInError(key ? "That is not an API key: a key is slk_ and 43 more letters, digits, - or _."
    : "Enter an API key.");
}

function showSignIn(message) {
  $("app").hidden = true;
  for (const id of ["connection", "signed-in", "sign-out"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  showSignInError(message);
  $("api-key").value = "";
  $("api-key").focus();
}

function showSignInError(message) {
  $("sign-in-error").textContent = message;
  $("sign-in-error").hidden = !message;
}

// The API never says which tenant a key is for, so the page names the key
// by its last characters.
function showApp() {
  $("sign-in").hidden = true;
  showSignInError("");
  $("api-key").value = "";
  const ending = document.createElement("code");
  ending.textContent = `…${session.key.slice(-4)}`;
  $("signed-in").replaceChildren("Signed in · key ", ending);
  for (const id of ["connection", "signed-in", "sign-out"]) $(id).hidden = false;
  $("app").hidden = false;
}

// -- start --------------------------------------------------------------------

$("processor").addEventListener("change", renderOptions);
$("job-form").addEventListener("submit", startJob);
$("refresh-jobs").addEventListener("click", refreshRecentJobs);
$("sign-in-form").addEventListener("submit", submitKey);
$("sign-out").addEventListener("click", signOut);
for (const id of Object.keys(DOWNLOADS)) $(id).addEventListener("click", download);
window.addEventListener("hashchange", () => {
  const key = keyFromAddress();
  if (key !== null) useKey(key, true);
});
setupDropzone();
loadProcessors();   // public: the form is ready when the key is
const linkedKey = keyFromAddress();
const startKey = linkedKey ?? storedKey();
if (startKey) useKey(startKey, linkedKey !== null);
else showSignIn("");
