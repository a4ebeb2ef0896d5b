// The kanban board: cards drag between stage columns (SortableJS, vendored as sortable.min.js). A drop submits the
// card's own "Move to" form, so a drag and the keyboard path are one request to the same move service.
function setUpBoard() {
  document.querySelectorAll(".kanban-cards").forEach((list) => {
    if (Sortable.get(list)) return;
    Sortable.create(list, {
      group: "kanban",
      draggable: ".kanban-card",
      filter: "select, button, [data-fixed]",
      preventOnFilter: false,
      animation: 120,
      onEnd(event) {
        if (event.to === event.from) return;
        const form = event.item.querySelector("form.kanban-move");
        const select = form && form.querySelector("select[name=stage_id]");
        if (!select) return;
        select.value = event.to.dataset.stageId;
        form.requestSubmit();
      },
    });
  });
}

document.addEventListener("DOMContentLoaded", setUpBoard);
document.addEventListener("htmx:after:swap", setUpBoard);
