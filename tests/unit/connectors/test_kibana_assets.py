"""config/kibana: the saved objects import cleanly in Kibana's format (checked structurally:
there is no Kibana here) and every field they chart or alert on exists in the index mappings."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from connectors.es_documents import (
    ANOMALIES,
    DRIFT_SCORES,
    INCIDENTS,
    ROLLUPS,
    IndexNames,
    load_templates,
)
from connectors.kibana import (
    RULES_DIR,
    SAVED_OBJECTS,
    load_rules,
    load_saved_objects,
    render_rule,
    render_saved_objects,
    rule_search,
    validate_saved_objects,
)

OBJECTS = load_saved_objects()
RULES = load_rules()
AGGREGATABLE = {"keyword", "date", "long", "double"}


def field_types(target: str) -> dict[str, str]:
    """Dotted field name -> mapped type, from the shipped template."""
    template = load_templates(IndexNames())[IndexNames().template_name(target)]
    out: dict[str, str] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            if "properties" in spec:
                walk(spec["properties"], f"{prefix}{name}.")
            else:
                out[prefix + name] = spec.get("type", "object")

    walk(template["template"]["mappings"]["properties"], "")
    return out


FIELDS = {
    "logdrift-anomalies": field_types(ANOMALIES),
    "logdrift-drift-scores": field_types(DRIFT_SCORES),
    "logdrift-incidents": field_types(INCIDENTS),
    "logdrift-rollups": field_types(ROLLUPS),
}


def by_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def test_every_line_is_a_json_object_with_type_id_and_attributes() -> None:
    lines = [line for line in SAVED_OBJECTS.read_bytes().splitlines() if line.strip()]
    assert len(lines) == len(OBJECTS) >= 8
    for line in lines:
        obj = orjson.loads(line)
        assert isinstance(obj, dict)
        assert {"type", "id", "attributes", "references"} <= obj.keys()
        assert obj["coreMigrationVersion"] and obj["typeMigrationVersion"]


def test_the_shipped_objects_validate_and_every_reference_resolves_inside_the_file() -> None:
    assert validate_saved_objects(OBJECTS) == []
    ids = {(o["type"], o["id"]) for o in OBJECTS}
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)


def test_there_is_a_data_view_per_index_on_the_event_time() -> None:
    views = {o["id"]: o["attributes"] for o in by_type("index-pattern")}
    assert views["logdrift-anomalies"]["title"] == "logdrift-anomalies-*"
    assert views["logdrift-drift-scores"]["title"] == "logdrift-drift-scores-*"
    assert views["logdrift-incidents"]["title"] == "logdrift-incidents-*"
    assert views["logdrift-rollups"]["title"] == "logdrift-rollups-*"
    assert {v["timeFieldName"] for v in views.values()} == {"@timestamp"}


def test_the_dashboard_shows_the_five_charts_and_the_latest_anomalies() -> None:
    (dashboard,) = by_type("dashboard")
    panels = orjson.loads(dashboard["attributes"]["panelsJSON"])
    shown = {r["id"] for r in dashboard["references"]}
    assert shown == {
        "logdrift-anomalies-by-feature",
        "logdrift-anomalies-by-kind",
        "logdrift-top-drifting-features",
        "logdrift-drift-score-over-time",
        "logdrift-feature-skew-share",
        "logdrift-latest-anomalies",
    }
    assert len(panels) == len(shown)
    assert all(p["gridData"]["x"] + p["gridData"]["w"] <= 48 for p in panels)  # Kibana's grid


def test_every_charted_field_exists_in_its_index_and_can_be_aggregated() -> None:
    for lens in by_type("lens"):
        (ref,) = lens["references"]
        fields = FIELDS[ref["id"]]
        layers = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        for layer in layers.values():
            assert set(layer["columnOrder"]) == set(layer["columns"])
            for column in layer["columns"].values():
                source = column["sourceField"]
                if source != "___records___":
                    assert fields.get(source) in AGGREGATABLE, (lens["id"], source)
    (search,) = by_type("search")
    for column in search["attributes"]["columns"]:
        assert column in FIELDS["logdrift-anomalies"], column


def test_the_validator_catches_what_kibana_would_refuse() -> None:
    lens = next(o for o in OBJECTS if o["type"] == "lens")
    dangling = {**lens, "references": [{**lens["references"][0], "id": "nowhere"}]}
    unnamed = {**lens, "references": []}
    problems = validate_saved_objects([*OBJECTS[:2], dangling, "not an object", OBJECTS[0]])
    assert any("nowhere is not in the file" in p for p in problems)
    assert any("needs type, id and attributes" in p for p in problems)
    assert any("duplicate index-pattern" in p for p in problems)
    assert any(
        "no reference named indexpattern-datasource-layer" in p
        for p in validate_saved_objects([*OBJECTS[:2], unnamed])
    )


def test_rendering_for_another_prefix_moves_the_data_views_and_leaves_the_file_alone() -> None:
    rendered = render_saved_objects(OBJECTS, IndexNames("team-a"))
    titles = {o["id"]: o["attributes"]["title"] for o in rendered if o["type"] == "index-pattern"}
    assert titles == {
        "logdrift-anomalies": "team-a-anomalies-*",
        "logdrift-drift-scores": "team-a-drift-scores-*",
        "logdrift-incidents": "team-a-incidents-*",
        "logdrift-rollups": "team-a-rollups-*",
    }
    assert by_type("index-pattern")[0]["attributes"]["title"] == "logdrift-anomalies-*"
    assert validate_saved_objects(rendered) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["name"])
def test_each_rule_is_an_elasticsearch_query_rule_over_the_incidents(rule: dict[str, Any]) -> None:
    """Rules act on incidents, not raw anomalies: a change that lasts a day pages once, when
    its incident opens (or escalates), not once per window and detector."""
    assert uuid.UUID(rule["id"])  # Kibana accepts only UUIDs as predefined rule ids
    assert rule["rule_type_id"] == ".es-query"
    params = rule["params"]
    fields = FIELDS["logdrift-incidents"]
    assert params["index"] == ["logdrift-incidents-*"]
    assert (params["timeWindowSize"], params["timeWindowUnit"]) == (5, "m")
    assert (params["thresholdComparator"], params["threshold"]) == (">", [0])
    assert fields[params["termField"]] == "keyword"
    assert params["timeField"] in ("incident.escalated_at", "incident.opened_at")
    assert fields[params["timeField"]] == "date"
    query = orjson.loads(params["esQuery"])["query"]
    for clause in query["bool"]["filter"]:
        ((_, condition),) = clause.items()
        (name,) = condition
        assert fields[name] == "keyword", name
    assert render_rule(rule, IndexNames("team-a"))["params"]["index"] == ["team-a-incidents-*"]


def test_the_severity_rule_pages_on_open_incidents_opened_or_escalated_to_high() -> None:
    (rule,) = [r for r in RULES if "severity" in r["tags"]]
    assert rule["params"]["timeField"] == "incident.escalated_at"
    filters = orjson.loads(rule["params"]["esQuery"])["query"]["bool"]["filter"]
    assert {"terms": {"incident.severity": ["high", "critical"]}} in filters
    assert {"term": {"incident.status": "open"}} in filters


def _matches_severity(query: dict[str, Any], severity: str) -> bool:
    """Whether a rule's bool query can match an incident (or anomaly) of ``severity`` (the
    clauses on incident.severity and anomaly.severity only: the shipped rules use term and
    terms)."""
    bool_ = query["bool"]

    def hits(clause: dict[str, Any]) -> bool | None:
        for op, field_values in clause.items():
            value = field_values.get("incident.severity", field_values.get("anomaly.severity"))
            if value is not None:
                return severity in (value if op == "terms" else [value])
        return None

    return all(hits(c) is not False for c in bool_.get("filter", [])) and not any(
        hits(c) for c in bool_.get("must_not", [])
    )


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["name"])
def test_no_rule_pages_on_an_info_anomaly(rule: dict[str, Any]) -> None:
    # "info" records an improvement (errors fell): kept, listed, never paged.
    query = orjson.loads(rule["params"]["esQuery"])["query"]
    assert not _matches_severity(query, "info")
    assert _matches_severity(query, "critical")


def test_there_are_rules_for_severity_and_for_schema_skew() -> None:
    assert sorted(p.name for p in RULES_DIR.glob("*.json")) == [
        "high-severity.json",
        "schema-skew.json",
    ]


def test_the_rule_search_filters_to_the_time_window_and_groups_by_model() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    body = rule_search(RULES[0], now)
    query, time_range = body["query"]["bool"]["filter"]
    field = RULES[0]["params"]["timeField"]
    assert time_range["range"][field]["gte"] == "2026-11-28T10:00:00+00:00"
    assert time_range["range"][field]["lte"] == "2026-11-28T10:05:00+00:00"
    assert query == orjson.loads(RULES[0]["params"]["esQuery"])["query"]
    assert body["aggs"]["groups"]["terms"]["field"] == "model.name"
