"""Rows are typed, checked and keyed before they reach the store."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pytest
from helpers import HARDWARE_ID, trial_row, trial_table

from kb.errors import ValidationError
from kb.schema import TABLES, Trial
from kb.validation import prepare_rows, prepare_table

TRIALS = TABLES["trials"]


def test_the_arrow_schema_follows_the_record():
    schema = TRIALS.arrow_schema
    assert schema.field("score").type == pa.float64()
    assert schema.field("seed").type == pa.int64()
    assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert schema.names == [f for f in Trial.__dataclass_fields__]


def test_keys_are_derived_when_missing_and_equal_for_equal_content():
    a = prepare_rows([trial_row(1)], TRIALS).table
    # The same config written with other key order and spacing is the same configuration.
    b = prepare_rows([trial_row(1, config='{ "n_estimators": 1,  "family": "random_forest" }')],
                     TRIALS).table
    assert a.column("trial_id")[0].as_py() == b.column("trial_id")[0].as_py()
    assert a.column("config")[0].as_py() == '{"family":"random_forest","n_estimators":1}'
    assert len(a.column("trial_id")[0].as_py()) == 16


@pytest.mark.parametrize("field, value", [
    ("seed", 1), ("fidelity", 0.5), ("hardware_id", "h1"), ("dataset_id", "d1"),
    ("config", {"family": "random_forest", "n_estimators": 2}),
])
def test_each_identifying_field_changes_the_trial_key(field, value):
    base = prepare_rows([trial_row(1)], TRIALS).table.column("trial_id")[0].as_py()
    changed = prepare_rows([trial_row(1, **{field: value})], TRIALS).table
    assert changed.column("trial_id")[0].as_py() != base


def test_non_identifying_fields_do_not_change_the_key():
    base = prepare_rows([trial_row(1)], TRIALS).table.column("trial_id")[0].as_py()
    other = prepare_rows([trial_row(1, score=0.1, latency_p50_ms=3.0)], TRIALS).table
    assert other.column("trial_id")[0].as_py() == base


def test_records_rows_and_tables_give_the_same_keys():
    record = Trial(dataset_id="d0", hardware_id=HARDWARE_ID, config={"family": "random_forest",
                   "n_estimators": 0}, model_family="random_forest", metric="accuracy",
                   direction="maximize", status="ok", source="test", score=0.5)
    from_record = prepare_rows([record], TRIALS).table.column("trial_id")[0].as_py()
    from_table = prepare_table(trial_table(1), TRIALS).table.column("trial_id")[0].as_py()
    assert from_record == from_table


def test_a_given_key_that_does_not_match_the_content_is_rejected():
    with pytest.raises(ValidationError, match="does not match") as e:
        prepare_rows([trial_row(0), trial_row(1, trial_id="0000000000000000")], TRIALS)
    assert (e.value.row, e.value.field) == (2, "trial_id")


def test_defaults_fill_missing_values():
    table = prepare_rows([trial_row(0)], TRIALS).table
    assert table.column("seed")[0].as_py() == 0
    assert table.column("fidelity")[0].as_py() == 1.0


@pytest.mark.parametrize("changes, field, message", [
    ({"status": "okay"}, "status", "unknown value 'okay'"),
    ({"direction": "up"}, "direction", "unknown value 'up'"),
    ({"score": float("nan")}, "score", "not a finite number"),
    ({"latency_p50_ms": float("inf")}, "latency_p50_ms", "not a finite number"),
    ({"score": None}, "score", "required when status is ok"),
    ({"seed": "three"}, "seed", "expected an integer"),
    ({"seed": 1.5}, "seed", "expected an integer"),
    ({"seed": True}, "seed", "expected an integer"),
    ({"score": "high"}, "score", "expected a number"),
    ({"metric": 3}, "metric", "expected text"),
    ({"config": "{'a': 1}"}, "config", "malformed JSON"),
    ({"config": "[1, 2]"}, "config", "expected a JSON object"),
    ({"config": '{"a": NaN}'}, "config", "malformed JSON"),
    ({"dataset_id": None}, "dataset_id", "missing required field"),
    ({"started_at": "yesterday"}, "started_at", "ISO 8601"),
])
def test_bad_values_are_named_by_row_and_field(changes, field, message):
    rows = [trial_row(0), trial_row(1), trial_row(2, **changes)]
    with pytest.raises(ValidationError, match=message) as e:
        prepare_rows(rows, TRIALS)
    assert (e.value.row, e.value.field) == (3, field)


def test_failed_trials_need_no_score():
    table = prepare_rows([trial_row(0, status="failed", score=None, failure_reason="boom")],
                         TRIALS).table
    assert table.column("score")[0].as_py() is None


def test_unknown_fields_are_rejected_with_the_known_ones_listed():
    with pytest.raises(ValidationError, match="unknown field 'colour'.*trial_id"):
        prepare_rows([trial_row(0, colour="red")], TRIALS)


def test_unknown_task_is_rejected():
    row = {"dataset_id": "x", "name": "n", "task": "clustering", "target": "y", "n_rows": 3,
           "n_features": 2, "source": "s"}
    with pytest.raises(ValidationError, match="unknown value 'clustering'.*binary, multiclass"):
        prepare_rows([row], TABLES["datasets"])


def test_text_columns_are_parsed_by_type():
    raw = trial_table(2).cast(pa.schema([
        pa.field(f.name, pa.string()) for f in trial_table(2).schema]))
    raw = raw.append_column("started_at", pa.array(["2026-01-02T03:04:05", "2026-01-02 03:04:05+01:00"]))
    raw = raw.append_column("batch_size", pa.array(["32", "32.0"]))
    table = prepare_table(raw, TRIALS).table
    assert table.column("seed").type == pa.int64()
    assert table.column("batch_size").to_pylist() == [32, 32]
    assert table.column("started_at").to_pylist() == [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime(2026, 1, 2, 2, 4, 5, tzinfo=timezone.utc),
    ]


def test_a_bad_value_in_a_typed_column_is_located():
    raw = trial_table(5).cast(pa.schema([pa.field(f.name, pa.string()) for f in trial_table(5).schema]))
    scores = raw.column("score").to_pylist()
    scores[3] = "0.5x"
    raw = raw.set_column(raw.schema.get_field_index("score"), "score", pa.array(scores))
    with pytest.raises(ValidationError) as e:
        prepare_table(raw, TRIALS)
    assert (e.value.row, e.value.field) == (4, "score")


def test_a_column_of_the_wrong_arrow_type_is_rejected():
    raw = trial_table(3).set_column(0, "dataset_id", pa.array([1, 2, 3]))
    with pytest.raises(ValidationError, match="expected text") as e:
        prepare_table(raw, TRIALS)
    assert e.value.field == "dataset_id"


def test_rows_repeated_in_the_input_count_once():
    prepared = prepare_rows([trial_row(0), trial_row(1), trial_row(0)], TRIALS)
    assert prepared.table.num_rows == 2
    assert prepared.repeated_in_input == 1


def test_same_key_with_different_content_in_one_input_is_rejected():
    with pytest.raises(ValidationError, match="same key as row 1") as e:
        prepare_rows([trial_row(0), trial_row(0, score=0.9)], TRIALS)
    assert (e.value.row, e.value.field) == (2, "score")


def test_values_that_look_like_code_stay_data():
    hostile = "'); DROP TABLE trials; --"
    table = prepare_rows([trial_row(0, source=hostile, failure_reason="__import__('os')")],
                         TRIALS).table
    assert table.column("source")[0].as_py() == hostile


def test_float_values_keep_every_bit():
    value = 0.1 + 0.2
    table = prepare_rows([trial_row(0, score=value)], TRIALS).table
    assert value != 0.3
    assert table.column("score")[0].as_py() == value
