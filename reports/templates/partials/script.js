(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("#q-table tbody tr"));
  var text = document.getElementById("q-filter"), slice = document.getElementById("q-slice"),
      cat = document.getElementById("q-category"), flips = document.getElementById("q-flips"),
      count = document.getElementById("q-count"), sort = document.getElementById("q-sort"),
      body = document.querySelector("#q-table tbody");
  function order() {
    var key = sort.value, sorted = rows.slice();
    sorted.sort(function (a, b) {
      if (key === "right") return (+a.dataset.right - +b.dataset.right) || a.dataset.id.localeCompare(b.dataset.id);
      if (key === "flips") return (+b.dataset.nflips - +a.dataset.nflips) || a.dataset.id.localeCompare(b.dataset.id);
      return a.dataset.id.localeCompare(b.dataset.id);
    });
    sorted.forEach(function (tr) { body.appendChild(tr); });
  }
  sort.addEventListener("change", order);
  function apply() {
    var needle = text.value.toLowerCase(), shown = 0;
    rows.forEach(function (tr) {
      var ok = (!needle || tr.textContent.toLowerCase().indexOf(needle) >= 0)
        && (!slice.value || tr.dataset.slice === slice.value)
        && (!cat.value || tr.dataset.category === cat.value)
        && (!flips.checked || tr.dataset.flip === "yes");
      tr.style.display = ok ? "" : "none";
      if (ok) shown++;
    });
    count.textContent = shown + " of " + rows.length + " questions";
  }
  [text, slice, cat, flips].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
  apply();
})();
