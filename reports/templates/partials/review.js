(function () {
  "use strict";
  // Every text shown comes from the run (model output, suite text): set with textContent only.
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var KEY = "ragvft-review:" + data.run + ":" + data.suite;
  var state = load();
  var items = [];  // in page order: {kind: "question" | "answer", q, answer, node, buttons}
  var current = -1;

  function load() {
    try {
      var s = JSON.parse(window.localStorage.getItem(KEY) || "null");
      if (s && typeof s.questions === "object" && typeof s.answers === "object") return s;
    } catch (e) { /* no storage (a file: URL in some browsers) or a broken entry: start empty */ }
    return { questions: {}, answers: {} };
  }
  function save() {
    try { window.localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* unavailable */ }
  }
  function akey(qid, variant) { return JSON.stringify([qid, variant]); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function button(label, cls, onclick) {
    var b = el("button", cls, label);
    b.type = "button";
    b.addEventListener("click", onclick);
    return b;
  }

  function answerLabel(q, answer) { return state.answers[akey(q.id, answer.variants[0])] || null; }
  function questionState(q) { return state.questions[q.id] || null; }

  function setAnswer(item, label) {
    item.answer.variants.forEach(function (v) {
      if (label) state.answers[akey(item.q.id, v)] = label; else delete state.answers[akey(item.q.id, v)];
    });
    save(); paint();
  }
  function setQuestion(q, label) {
    var s = state.questions[q.id] || {};
    if (label) { s.label = label; state.questions[q.id] = s; }
    else { delete state.questions[q.id]; questionItem(q).fix.value = ""; }  // clearing drops the fix too
    save(); paint();
  }
  function setFixed(q, text) {
    var s = state.questions[q.id] || {};
    if (text.trim()) { s.fixed = text; if (!s.label) s.label = "valid"; state.questions[q.id] = s; }
    else { delete s.fixed; if (s.label) state.questions[q.id] = s; }
    save(); paint();
  }

  function build() {
    var main = document.getElementById("items");
    data.items.forEach(function (q, n) {
      var sec = el("section", "q");
      sec.id = "q-" + n;
      var qitem = el("div", "item question");
      qitem.appendChild(el("div", "qhead", "Question " + (n + 1) + " of " + data.items.length + " · " + q.id +
        (q.category ? " · " + q.category : "") + (q.slice ? " · " + q.slice : "")));
      qitem.appendChild(el("p", "qtext", q.question));
      qitem.appendChild(el("div", "gold", "Gold answer: " + q.gold.join("  |  ")));
      q.passages.forEach(function (p) {
        qitem.appendChild(el("div", "passage", p.text === null ? "(passage " + p.id + ": text not in this run)" : p.text));
      });
      var qc = el("div", "controls");
      var entry = { kind: "question", q: q, node: qitem, buttons: {} };
      entry.buttons.valid = button("Valid (v)", "good", function () { focusItem(entry); setQuestion(q, "valid"); });
      entry.buttons.invalid = button("Invalid (i)", "bad", function () { focusItem(entry); setQuestion(q, "invalid"); });
      var fix = el("input");
      fix.type = "text";
      fix.placeholder = "fixed gold answer (optional)";
      fix.className = "fix";
      fix.value = (questionState(q) || {}).fixed || "";
      fix.addEventListener("focus", function () { focusItem(entry, true); });
      fix.addEventListener("input", function () { setFixed(q, fix.value); });
      entry.fix = fix;
      entry.status = el("span", "status");
      [entry.buttons.valid, entry.buttons.invalid, fix, entry.status].forEach(function (x) { qc.appendChild(x); });
      qitem.appendChild(qc);
      sec.appendChild(qitem);
      items.push(entry);
      var box = el("div", "answers");
      box.appendChild(el("h3", null, "Answers"));
      q.answers.forEach(function (a, j) {
        var node = el("div", "item answer");
        var head = el("div", "qhead", "Answer " + String.fromCharCode(65 + (j % 26)) + " ");
        head.appendChild(el("span", "variants", "(" + a.variants.join(", ") + ")"));
        node.appendChild(head);
        node.appendChild(el("div", "atext", a.text === "" ? "(empty answer)" : a.text));
        var ac = el("div", "controls");
        var ent = { kind: "answer", q: q, answer: a, node: node, buttons: {} };
        ent.buttons.correct = button("Correct (c)", "good", function () { focusItem(ent); setAnswer(ent, "correct"); });
        ent.buttons.incorrect = button("Incorrect (x)", "bad", function () { focusItem(ent); setAnswer(ent, "incorrect"); });
        ent.status = el("span", "status");
        [ent.buttons.correct, ent.buttons.incorrect, ent.status].forEach(function (x) { ac.appendChild(x); });
        node.appendChild(ac);
        box.appendChild(node);
        items.push(ent);
      });
      sec.appendChild(box);
      main.appendChild(sec);
    });
  }

  function labelled(item) {
    return item.kind === "answer" ? answerLabel(item.q, item.answer) !== null : questionState(item.q) !== null;
  }
  function paint() {
    var answers = 0, done = 0, questions = 0;
    items.forEach(function (item) {
      var label = item.kind === "answer" ? answerLabel(item.q, item.answer) : (questionState(item.q) || {}).label || null;
      Object.keys(item.buttons).forEach(function (k) { item.buttons[k].classList.toggle("on", k === label); });
      item.node.setAttribute("data-label", label || "");
      item.status.textContent = label ? "marked " + label : "not labelled";
      if (item.kind === "answer") { answers += item.answer.variants.length; if (label) done += item.answer.variants.length; }
      else if (label) questions += 1;
    });
    document.getElementById("progress").textContent =
      done + " of " + answers + " answers labelled · " + questions + " of " + data.items.length + " questions checked";
  }

  function focusItem(item, keepField) {
    focusAt(items.indexOf(item), keepField);
  }
  function focusAt(i, keepField) {
    if (i < 0 || i >= items.length) return;
    if (current >= 0) items[current].node.classList.remove("current");
    current = i;
    var node = items[i].node;
    node.classList.add("current");
    if (!keepField && document.activeElement && document.activeElement.blur) document.activeElement.blur();
    if (node.scrollIntoView) node.scrollIntoView({ block: "nearest" });
  }
  function questionItem(q) {
    for (var i = 0; i < items.length; i++) if (items[i].kind === "question" && items[i].q === q) return items[i];
    return null;
  }
  function nextUnlabelled() {
    for (var d = 1; d <= items.length; d++) {
      var i = (current + d + items.length) % items.length;
      if (!labelled(items[i])) return focusAt(i);
    }
  }

  function onKey(ev) {
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) {
      if (ev.key === "Escape" && t.type === "text") t.blur();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var item = items[current];
    switch (ev.key) {
      case "j": focusAt(current + 1); break;
      case "k": focusAt(current - 1); break;
      case "n": nextUnlabelled(); break;
      case "c": case "x":
        if (item && item.kind === "answer") { setAnswer(item, ev.key === "c" ? "correct" : "incorrect"); focusAt(current + 1); }
        break;
      case "v": case "i":
        if (!item) break;
        setQuestion(item.q, ev.key === "v" ? "valid" : "invalid");
        if (item.kind === "question") focusAt(current + 1);
        break;
      case "u":
        if (item && item.kind === "answer") setAnswer(item, null);
        else if (item) setQuestion(item.q, null);
        break;
      case "f":
        if (item) { var qi = questionItem(item.q); focusAt(items.indexOf(qi), true); qi.fix.focus(); }
        break;
      default: return;
    }
    ev.preventDefault();
  }

  // The export: {run, suite, labels: [{question_id, variant (null: the question), label, fixed_answer?, answer?}]}
  function exportLabels() {
    var labels = [];
    data.items.forEach(function (q) {
      var s = questionState(q);
      if (s && s.label) {
        var lab = { question_id: q.id, variant: null, label: s.label };
        if (s.fixed && s.fixed.trim()) lab.fixed_answer = s.fixed.trim();
        labels.push(lab);
      }
      data.variants.forEach(function (v) {
        q.answers.forEach(function (a) {
          var label = a.variants.indexOf(v) >= 0 ? state.answers[akey(q.id, v)] : null;
          if (label) labels.push({ question_id: q.id, variant: v, label: label, answer: a.text });
        });
      });
    });
    return { run: data.run, suite: data.suite, labels: labels };
  }
  function download() {
    var blob = new Blob([JSON.stringify(exportLabels(), null, 1)], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "labels-" + data.run.replace(/[^A-Za-z0-9._-]+/g, "_") + ".json";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  build();
  paint();
  if (items.length) focusAt(0);
  document.addEventListener("keydown", onKey);
  document.getElementById("export").addEventListener("click", download);
  var toggle = document.getElementById("show-variants");
  toggle.addEventListener("change", function () { document.body.classList.toggle("show-variants", toggle.checked); });
  window.ragvftReview = { exportLabels: exportLabels, storageKey: KEY };
})();
