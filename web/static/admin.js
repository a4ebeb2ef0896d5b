// The admin's only hand-written script: the placeholder picker of template fields, and focus
// on the error summary after htmx swaps a form back with errors.
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
