// The admin's hand-written script: the header's menu on small screens, the placeholder picker of template fields,
// copy buttons, and focus on the error summary after htmx swaps a form back with errors.
document.documentElement.classList.add("js");  // without it the header's menu stays open (CSS)

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("button.menu-toggle");
  if (!toggle) return;
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  toggle.closest(".top").classList.toggle("open", open);
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const toggle = document.querySelector(".top.open button.menu-toggle");
  if (!toggle) return;
  toggle.click();
  toggle.focus();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-insert]");
  if (!button) return;
  const picker = document.getElementById(button.dataset.insert);
  const field = document.getElementById(button.dataset.into);
  if (!picker || !field) return;
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? field.value.length;
  field.value = field.value.slice(0, start) + picker.value + field.value.slice(end);
  field.focus();
  field.selectionStart = field.selectionEnd = start + picker.value.length;
});

document.addEventListener("htmx:after:swap", () => {
  const summary = document.querySelector("[data-focus]");
  if (summary) summary.focus();
});

// Copy buttons (a webhook trigger's secret URL): data-copy names the input whose value is copied.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";  // no clipboard (plain http): the text is selected
  }
});

// The live timeline: a list with data-live listens to the server's stream (Server-Sent Events) and, on each
// notice, fetches its own fragment again (data-refresh) and puts it in place. One stream per page; EventSource
// reconnects by itself after a drop.
function listenToTimeline() {
  const list = document.querySelector("[data-live]");
  if (!list || window.__timelineStream) return;
  const stream = new EventSource(list.dataset.live);
  window.__timelineStream = stream;
  let fetching = null;
  const refresh = async () => {
    const current = document.querySelector("[data-live]");
    if (!current) return;
    const answer = await fetch(current.dataset.refresh, {headers: {"HX-Request": "true"}, credentials: "same-origin"});
    if (!answer.ok) return;
    const holder = document.createElement("div");
    holder.innerHTML = await answer.text();
    const fresh = holder.querySelector("[data-live]");
    const now = document.querySelector("[data-live]");
    if (fresh && now) now.replaceWith(fresh);
  };
  stream.addEventListener("timeline", () => {
    fetching = (fetching || Promise.resolve()).then(refresh).catch(() => {});
  });
  let opened = false;
  stream.addEventListener("open", () => {
    if (opened) fetching = (fetching || Promise.resolve()).then(refresh).catch(() => {});  // what came while away
    opened = true;
    document.documentElement.dataset.timelineLive = "yes";
  });
}
document.addEventListener("DOMContentLoaded", listenToTimeline);
