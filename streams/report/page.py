"""The HTML of ``logdrift report`` (a Jinja2 template, kept in a module so every install of the
package has it). Inline CSS only: the page loads nothing. No colour of the charts is used on
the page itself, so the charts can be found in a screenshot by colour."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>logdrift report: {{ data.model }}</title>
<style>
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1a1a1a; background: #fff; max-width: 1360px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 4px; }
.meta { color: #555; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; white-space: nowrap; }
td { white-space: nowrap; }
td.wrap { white-space: normal; }
td.narrow { white-space: normal; max-width: 240px; overflow-wrap: anywhere; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.moved td { font-weight: 600; }
.flag { color: #a0002a; }
.charts { display: grid; grid-template-columns: 47% 51%; gap: 2%; align-items: start; }
.charts svg { width: 100%; height: auto; }
.note { color: #555; font-size: 13px; }
.msg { max-width: 760px; }
.headline { font-size: 15px; margin: 0 0 10px; }
.partial { color: #555; font-style: italic; font-weight: normal; }
</style>
</head>
<body>
<h1>logdrift report: model {{ data.model or "(any)" }}</h1>
<p class="meta">
{% if data.period %}windows {{ data.period[0] | iso }} to {{ data.period[1] | iso }}; {% endif %}
{{ data.windows }} windows{% if data.records %},
{{ "{:,}".format(data.records) }} records{% endif %};
source: {{ data.source }}; generated {{ generated | iso }}.
</p>
<p class="headline">{{ data.headline | capitalize_first }}.</p>
<p class="note">Distances compare each closed window with the training baseline: Jensen-Shannon
divergence (bits) over the baseline's quantile bins for numbers, L-infinity (largest change of a
category's share) for categories. "Moved" is the largest statistic / threshold in the feature's
last full window (1 is the alarm line, anomalies included); the features are in that order.
"Past threshold" counts the full windows from the first one past it. A partial window (judged
when the runner stopped, on fewer records than a window is judged on) is drawn hatched and
hollow on the timelines and marked in the tables, but never taken as the verdict.</p>

<h2>Summary</h2>
<table>
<tr><th>feature</th><th>type</th><th>moved</th><th>by</th><th>past threshold</th><th>peak</th>
<th>skew</th><th>its threshold</th><th>anomalies</th><th>missing</th><th>violations</th></tr>
{% for c in data.features %}{% set s = c.summary %}
<tr{% if s.latest_ratio > 1 %} class="moved"{% endif %}>
<td><a href="#f-{{ loop.index }}">{{ s.feature }}</a></td><td>{{ s.type }}</td>
<td class="n{% if s.latest_ratio > 1 %} flag{% endif %}">{{ s.latest_ratio | ratio }}
{% if s.partial %} <span class="partial">(partial window)</span>{% endif %}</td>
<td class="narrow">{{ s.reason }}</td>
<td class="narrow">{{ s.tally }}</td>
<td class="n">{{ s.peak_ratio | ratio }}</td>
<td class="n">{{ s.latest | num }}</td><td class="n">{{ s.threshold | num }}</td>
<td class="wrap">{{ s.anomalies }}{% if s.kinds %} ({{ s.kinds | join(", ") }}){% endif %}</td>
<td class="n">{{ s.missing_rate | num(".1%") }}</td>
<td class="n">{{ s.violation_rate | num(".1%") }}</td>
</tr>
{% endfor %}
</table>

<h2>Features</h2>
{% for c, dist, line in charts %}
<section id="f-{{ loop.index }}" class="feature" data-feature="{{ c.feature }}">
<h3>{{ c.feature }}{% if c.sensitive %} <span class="note">(sensitive: categories are keyed
hashes)</span>{% endif %}{% if c.summary.latest_ratio > 1 %} <span class="flag">moved
{{ c.summary.latest_ratio | ratio }} past its threshold: {{ c.summary.reason }}</span>
{% endif %}</h3>
{% if c.distribution.window %}<p class="note">{% if c.distribution.partial %}Partial window
{{ c.distribution.window[0] | iso }} to {{ c.distribution.window[1] | iso }} (judged on too few
records; there is no full one).{% else %}Last full window {{ c.distribution.window[0] | iso }}
to {{ c.distribution.window[1] | iso }}.{% endif %}
{% if c.summary.history %} {{ c.summary.history | capitalize_first }}.{% endif %}</p>{% endif %}
<div class="charts"><div>{{ dist | safe }}</div><div>{{ line | safe }}</div></div>
</section>
{% endfor %}

<h2>Schema violations</h2>
{% if data.violations %}
<table>
<tr><th>feature</th><th>code</th><th>meaning</th><th>records</th><th>share</th></tr>
{% for v in data.violations %}
<tr><td>{{ v.feature }}</td><td>{{ v.code }}</td><td class="wrap">{{ v.meaning }}</td>
<td class="n">{{ "{:,}".format(v.count) }}</td><td class="n">{{ v.share | num(".1%") }}</td></tr>
{% endfor %}
</table>
{% else %}<p>No record violated the schema.</p>{% endif %}
{% if data.dead_letters %}
<h3>Dead letters (records that could not be decoded)</h3>
<table><tr><th>reason</th><th>records</th></tr>
{% for reason, n in data.dead_letters %}
<tr><td class="wrap">{{ reason }}</td><td class="n">{{ "{:,}".format(n) }}</td></tr>
{% endfor %}
</table>
{% endif %}

{% if data.skew %}
<h2>Feature skew: serving against the pipeline</h2>
<p class="note">The same requests' features as serving logged them and as the pipeline computed
them, joined by request id: {{ "{:,}".format(data.pipeline_records) }} pipeline records,
{{ data.skew_windows }} windows of joined requests. "Differ": the share of joined requests whose
values disagree beyond the schema's tolerance; the worst window's share against its
threshold.</p>
<table>
<tr><th>feature</th><th>windows</th><th>joined</th><th>differ</th><th>one side only</th>
<th>worst window</th><th>its threshold</th><th>ending</th><th>anomalies</th></tr>
{% for r in data.skew %}
<tr{% if r.anomalies %} class="moved"{% endif %}><td>{{ r.feature }}</td>
<td class="n">{{ r.windows }}</td><td class="n">{{ "{:,}".format(r.joined) }}</td>
<td class="n">{{ "{:.2%}".format(r.share) }}</td><td class="n">{{ "{:,}".format(r.one_side) }}</td>
<td class="n{% if r.anomalies %} flag{% endif %}">{{ "{:.2%}".format(r.worst) }}</td>
<td class="n">{{ "{:.2%}".format(r.worst_threshold) }}</td><td>{{ r.worst_end | iso }}</td>
<td class="n">{{ r.anomalies }}</td></tr>
{% endfor %}
</table>
{% endif %}

<h2>Anomalies ({{ data.anomalies | length }}, newest first)</h2>
{% if omitted %}<p class="note">The {{ omitted }} oldest are left out.</p>{% endif %}
{% if anomalies %}
<table>
<tr><th>time</th><th>severity</th><th>kind</th><th>feature</th><th>detector</th>
<th>what changed</th></tr>
{% for a in anomalies %}
<tr><td>{{ a.timestamp | iso }}{% if data.in_partial_window(a) %}
<span class="partial">(partial window)</span>{% endif %}</td>
<td>{{ a.severity }}</td><td>{{ a.kind }}</td>
<td>{{ a.feature }}</td><td>{{ a.detector }}</td><td class="msg wrap">{{ a.message }}</td></tr>
{% endfor %}
</table>
{% else %}<p>No anomaly.</p>{% endif %}
</body>
</html>
"""
