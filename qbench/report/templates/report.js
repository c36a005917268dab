/* qbench report: sortable tables and the cells filter. The charts are static SVG and need no script.
   Data comes from the JSON block; text is only ever set with textContent, so suite strings
   (model names, error messages) can never become markup. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);

  // ---- sorting: numbers numerically, text alphabetically, missing values (empty data-v) always last
  function compareCells(a, b, sign) {
    const x = a ? a.getAttribute("data-v") : "";
    const y = b ? b.getAttribute("data-v") : "";
    if (x === "" || y === "") return (x === "") - (y === "");
    const nx = Number(x), ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return sign * (nx - ny);
    return sign * x.localeCompare(y);
  }

  function sortBy(table, th) {
    const index = Array.prototype.indexOf.call(th.parentNode.children, th);
    const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", dir);
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((r1, r2) => compareCells(r1.cells[index], r2.cells[index], dir === "ascending" ? 1 : -1));
    rows.forEach((r) => body.appendChild(r));
  }

  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("th[data-key]").forEach((th) => {
      th.addEventListener("click", () => sortBy(table, th));
    });
  });

  // ---- filtering the cells table: free text plus one select per model / recipe / device / status
  const table = document.getElementById("cells-table");
  if (!table) return;  // a run without cells (`qbench sensitivity` alone) has no cells table
  const text = document.getElementById("filter-text");
  const count = document.getElementById("filter-count");
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));

  function applyFilter() {
    const words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = Array.from(table.tBodies[0].rows);
    let shown = 0;
    rows.forEach((row) => {
      const keep = selects.every((s) => !s.value || row.dataset[s.dataset.filter] === s.value) &&
        words.every((w) => row.textContent.toLowerCase().includes(w));
      row.hidden = !keep;
      if (keep) shown += 1;
    });
    count.textContent = shown === rows.length ? rows.length + " cells" : shown + " of " + rows.length + " cells";
  }

  selects.forEach((select) => {
    (data.filters[select.dataset.filter] || []).forEach((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      select.appendChild(option);
    });
    select.addEventListener("change", applyFilter);
  });
  text.addEventListener("input", applyFilter);
  applyFilter();

  // ---- column groups fold to their headline columns (the table then fits a laptop screen)
  function setGroup(button, open) {
    const group = button.dataset.group;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    table.querySelectorAll(".g-" + group + ".detail").forEach((el) => el.classList.toggle("folded", !open));
    const head = table.querySelector('tr.groups th[data-group="' + group + '"]');
    const span = Number(open ? head.dataset.span : head.dataset.foldedSpan);
    head.hidden = span === 0;
    head.colSpan = Math.max(span, 1);
  }

  document.querySelectorAll("button.col-toggle").forEach((button) => {
    button.addEventListener("click", () => setGroup(button, button.getAttribute("aria-expanded") !== "true"));
  });

  // a link to a cell (the answers at the top) unfolds nothing but must not land on a filtered-out row
  window.addEventListener("hashchange", () => {
    const row = document.getElementById(location.hash.slice(1));
    if (row && row.hidden && table.contains(row)) {
      text.value = "";
      selects.forEach((s) => { s.value = ""; });
      applyFilter();
      row.scrollIntoView();
    }
  });
})();
