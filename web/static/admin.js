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
