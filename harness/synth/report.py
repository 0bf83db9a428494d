"""`synth-report.html`: one self-contained page (no network) saying what `ragvft synth` kept and what
it dropped and why: counts per reason and per question type, then every question. Rendered with
Jinja2 autoescaping: passages, questions and replies are untrusted text and always show as text."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

from suites.synth import REASONS, Outcome

BUILTIN_NOTE = (
    "These questions were written by the built-in question writer, a LoRA adapter on ragvft's built-in "
    "2M-parameter base model, and read back by the config's base model for the round trip. Their quality "
    "is bounded by the built-in model: it learned from templated facts about made-up organisations, so it "
    "writes questions in those templates, cannot phrase a question it has not seen the like of, and now "
    "and then misspells a name in a question that still passes the round trip (the reader answers from "
    "the one passage it is given). Every kept question passed the checks below; for a real suite, name a "
    "stronger generator (synth.generator.path or synth.generator.openai) and have people review the result."
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>ragvft synth · {{ s.suite }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1240px;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px;width:100%}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;white-space:nowrap}
.note{background:#fff6dd;border:1px solid #e6c65c;padding:10px 14px;border-radius:4px}
.meta{color:#666}.p{color:#555;font-size:12px;max-width:420px}code{white-space:pre-wrap;word-break:break-all}
</style></head><body>
<h1>ragvft synth: {{ s.kept }} of {{ s.candidates }} questions kept</h1>
<p class="meta">corpus: {{ s.source.kind }} {{ s.source.name or s.source.path }} · {{ s.corpus_passages }} passages,
{{ s.passages_asked }} asked about · generator: {{ s.generator.kind }} {{ s.generator.adapter or s.generator.path
or s.generator.model }} · reader: {{ s.reader.model }} · {{ s.wall_time_s }} s</p>
{% if not s.kept %}<p class="note" id="nothing-kept">No question passed every check, so no suite was
written (ragvft synth exited 2). What each candidate was and why it dropped is below.</p>{% endif %}
{% if builtin %}<p class="note" id="builtin-note">{{ note }}</p>{% endif %}
{% if s.source.skipped %}<p>Files left out: {% for f, why in s.source.skipped.items() %}{{ f }} ({{ why }}){% if not
loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
<h2>Dropped, by reason</h2>
<table id="reasons"><tr><th>reason</th><th>what it means</th><th>questions</th></tr>
{% for r, n in s.dropped.items() %}<tr><td>{{ r }}</td><td>{{ reasons[r] }}</td><td class="n">{{ n }}</td></tr>
{% endfor %}<tr><th>kept</th><th>passed every check</th><th class="n">{{ s.kept }}</th></tr></table>
<h2>By question type</h2>
<table id="types"><tr><th>type</th><th>asked for</th><th>kept</th><th>dropped</th></tr>
{% for t, row in s.by_type.items() %}<tr><td>{{ t }}</td><td>{{ "yes" if t in s.types else "no" }}</td>
<td class="n">{{ row.kept }}</td><td class="n">{{ row.dropped }}</td></tr>{% endfor %}</table>
<h2>Kept</h2>
<table id="kept"><tr><th>#</th><th>type</th><th>question</th><th>answer</th><th>reader</th><th>F1</th><th>passage</th></tr>
{% for c in kept %}<tr><td class="n">{{ loop.index0 }}</td><td>{{ c.type }}</td><td>{{ c.question }}</td>
<td>{{ c.answer }}</td><td>{{ c.reader_answer }}</td><td class="n">{{ "%.2f"|format(c.round_trip_f1) }}</td>
<td class="p">{{ c.passage.id }}: {{ c.passage.text|truncate(300) }}</td></tr>{% endfor %}</table>
<h2>Dropped</h2>
<table id="dropped"><tr><th>reason</th><th>question (or the reply)</th><th>answer</th><th>reader / evidence</th><th>passage</th></tr>
{% for c in dropped %}<tr><td>{{ c.reason }}</td><td>{% if c.reason == "unparseable" %}<code>{{ c.reply|truncate(300) }}</code>
{% else %}{{ c.question }}{% endif %}</td><td>{{ c.answer }}</td><td>{% if c.reader_answer is not none %}{{ c.reader_answer }}
(F1 {{ "%.2f"|format(c.round_trip_f1) }}){% endif %}{{ c.detail }}</td>
<td class="p">{{ c.passage.id }}: {{ c.passage.text|truncate(300) }}</td></tr>{% endfor %}</table>
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default_for_string=True, default=True))
_template = _env.from_string(_PAGE)


def render_report(outcome: Outcome, summary: dict, *, builtin: bool) -> str:
    """The page for `outcome` (kept and dropped candidates) and `summary` (what synth.json holds);
    `builtin` adds the statement that the built-in model bounds the questions' quality."""
    return _template.render(
        s=summary,
        kept=outcome.kept,
        dropped=outcome.dropped,
        reasons=REASONS,
        builtin=builtin,
        note=BUILTIN_NOTE,
    )
