"""The tables of a knowledge base: one typed record per table, and the rules for its rows.

Each table is described once, by a frozen dataclass. Its Arrow schema, its required fields,
its allowed values and the columns hashed into its key are all read from that dataclass, so
a field is added in exactly one place. ``TABLES`` maps table names to their ``TableSpec``.

Field metadata understood here:

- ``choices``: the only values the field may take (``task``, ``status``, ...).
- ``json``: the field holds JSON text; it is validated and stored canonically
  (sorted keys, no whitespace), so equal objects are equal strings.
- ``json_object``: with ``json``, the value must be a JSON object (a configuration).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is imported where schemas are built, so `kb --help` stays fast
    import pyarrow as pa

SCHEMA_VERSION = 2

TASKS = ("binary", "multiclass", "regression")
TRIAL_STATUSES = ("ok", "failed", "timeout", "infeasible", "infeasible-predicted")
DIRECTIONS = ("maximize", "minimize")
HARDWARE_KINDS = ("cpu", "gpu", "accelerator", "external")
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
# How rows enter and leave: what to do with a row whose key is stored with other content, and
# the file formats tables are read from and written to.
ON_CONFLICT = ("error", "keep", "replace")
TABLE_FORMATS = ("parquet", "csv", "jsonl")


def _choices(values: tuple[str, ...]) -> dict:
    return {"choices": values}


JSON = {"json": True}
JSON_OBJECT = {"json": True, "json_object": True}


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A dataset the KB knows: its identity is the hash of its canonical data and target."""

    dataset_id: str
    name: str
    task: str = field(metadata=_choices(TASKS))
    target: str
    n_rows: int
    n_features: int
    source: str
    n_classes: int | None = None
    licence: str | None = None
    origin: str | None = None  # where the data was read from (a path, "sklearn:iris", ...)
    data_file: str | None = None  # the KB's own copy, relative to the KB folder; None if metadata only
    added_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class MetaFeature:
    dataset_id: str
    name: str  # OpenML quality names where one exists
    value: float
    extractor: str  # "metakb", "openml", "autosklearn", "pymfe", ...
    extractor_version: str
    sample_rows: int | None = None  # rows the value was computed on, when subsampled


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """A named place a model runs: a machine and the way the runtime is set up on it."""

    hardware_id: str = ""  # derived: hash of the fingerprint fields
    name: str
    kind: str = field(metadata=_choices(HARDWARE_KINDS))
    source: str  # "measured" here, or where it was ingested from
    cpu_model: str | None = None
    cores: int | None = None
    threads: int | None = None
    memory_mb: float | None = None
    os: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    execution_provider: str | None = None
    quantization: str | None = None
    details: str | None = field(default=None, metadata=JSON)  # anything else of the fingerprint


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One evaluated configuration on one dataset, with what it cost on one hardware profile."""

    trial_id: str = ""  # derived: hash of (dataset_id, config, metric, seed, fidelity, hardware_id)
    dataset_id: str
    hardware_id: str
    config: str = field(metadata=JSON_OBJECT)
    config_id: str = ""  # derived: hash of the canonical config
    model_family: str
    metric: str
    direction: str = field(metadata=_choices(DIRECTIONS))
    status: str = field(metadata=_choices(TRIAL_STATUSES))
    source: str
    seed: int = 0
    fidelity: float = 1.0
    score: float | None = None  # required unless the trial failed or timed out
    score_std: float | None = None  # spread across cross-validation folds
    run_id: str | None = None
    failure_reason: str | None = None
    train_seconds: float | None = None
    latency_p50_ms: float | None = None  # batch 1
    latency_p95_ms: float | None = None
    batch_size: int | None = None
    latency_batch_p50_ms: float | None = None  # batch `batch_size`
    latency_batch_p95_ms: float | None = None
    peak_memory_mb: float | None = None
    model_bytes: int | None = None
    n_parameters: int | None = None
    parity_error: float | None = None
    code_version: str | None = None
    library_versions: str | None = field(default=None, metadata=JSON)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    export_seconds: float | None = None  # converting to ONNX (and quantizing)
    measure_seconds: float | None = None  # measuring on the profile, process start included
    quantized_weights: int | None = None  # int8 weight tensors; null unless the profile quantizes
    background_cpu: float | None = None  # CPU cores other processes used while latency was timed
    arch_id: str | None = None  # the architecture trained, for fragment-built networks
    details: str | None = field(default=None, metadata=JSON)  # source-specific extras (e.g. TabRepo's time_infer_s)


@dataclass(frozen=True, kw_only=True)
class Fragment:
    fragment_id: str = ""  # derived: hash of (kind, params, in_shape)
    kind: str
    params: str = field(metadata=JSON_OBJECT)
    in_shape: str = field(metadata=JSON)  # e.g. "[32]" or "[16,32,32]", batch excluded
    out_shape: str = field(metadata=JSON)
    n_parameters: int | None = None
    flops: int | None = None


@dataclass(frozen=True, kw_only=True)
class FragmentCost:
    fragment_id: str
    hardware_id: str
    input_shape: str = field(metadata=JSON)
    batch: int
    latency_p50_ms: float
    latency_p95_ms: float | None = None
    memory_mb: float | None = None
    flops: int | None = None
    n_parameters: int | None = None
    source: str | None = None
    measured_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Architecture:
    arch_id: str = ""  # derived: hash of the canonical graph
    graph: str = field(metadata=JSON_OBJECT)  # NetworkX node-link JSON
    fragments: str = field(metadata=JSON)  # list of fragment ids
    name: str | None = None
    source: str | None = None


@dataclass(frozen=True, kw_only=True)
class Run:
    run_id: str
    command: str
    status: str = field(metadata=_choices(RUN_STATUSES))
    started_at: datetime
    arguments: str | None = field(default=None, metadata=JSON)
    finished_at: datetime | None = None
    counts: str | None = field(default=None, metadata=JSON)
    code_version: str | None = None


def _arrow_type(python_type: type) -> "pa.DataType":
    import pyarrow as pa

    return {
        str: pa.string(),
        int: pa.int64(),
        float: pa.float64(),
        bool: pa.bool_(),
        datetime: pa.timestamp("us", tz="UTC"),
    }[python_type]


@dataclass(frozen=True)
class Column:
    name: str
    python_type: type
    arrow_type: "pa.DataType"
    nullable: bool  # may be missing or null in a row
    choices: tuple[str, ...] | None
    is_json: bool
    json_object: bool


@dataclass(frozen=True)
class TableSpec:
    """How one table is stored and validated.

    ``key`` names the columns that identify a row. ``derived`` names columns the store computes
    as a hash of other columns (when a row leaves them empty) and checks (when it fills them),
    in the order given, so a derived column may feed the next.
    """

    name: str
    record: type
    key: tuple[str, ...]
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # {field: (other field, values)}: an optional field that must be set when the other
    # field takes one of the values (a trial's score, unless it failed).
    required_when: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @cached_property
    def columns(self) -> tuple[Column, ...]:
        hints = typing.get_type_hints(self.record)
        out = []
        for f in dataclasses.fields(self.record):
            python_type, optional = _unwrap_optional(hints[f.name])
            has_default = f.default is not dataclasses.MISSING
            out.append(
                Column(
                    name=f.name,
                    python_type=python_type,
                    arrow_type=_arrow_type(python_type),
                    nullable=optional,
                    choices=f.metadata.get("choices"),
                    is_json=bool(f.metadata.get("json")),
                    json_object=bool(f.metadata.get("json_object")),
                )
            )
            # A non-optional field with a default (seed=0) is filled with it, never null.
            if has_default and not optional:
                out[-1] = dataclasses.replace(out[-1], nullable=False)
        return tuple(out)

    @cached_property
    def defaults(self) -> dict[str, object]:
        return {
            f.name: f.default
            for f in dataclasses.fields(self.record)
            if f.default is not dataclasses.MISSING
            and f.default is not None
            and f.name not in self.derived
        }

    @cached_property
    def arrow_schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.arrow_type, nullable=True) for c in self.columns])

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _unwrap_optional(hint) -> tuple[type, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("datasets", Dataset, key=("dataset_id",)),
        TableSpec("metafeatures", MetaFeature, key=("dataset_id", "name")),
        TableSpec(
            "hardware",
            Hardware,
            key=("hardware_id",),
            derived={
                "hardware_id": (
                    "name", "kind", "cpu_model", "cores", "threads", "memory_mb", "os",
                    "runtime", "runtime_version", "execution_provider", "quantization",
                ),
            },
        ),
        TableSpec(
            "trials",
            Trial,
            key=("trial_id",),
            derived={
                "config_id": ("config",),
                "trial_id": ("dataset_id", "config", "metric", "seed", "fidelity", "hardware_id"),
            },
            required_when={"score": ("status", ("ok", "infeasible"))},
        ),
        TableSpec(
            "fragments",
            Fragment,
            key=("fragment_id",),
            derived={"fragment_id": ("kind", "params", "in_shape")},
        ),
        TableSpec(
            "fragment_costs", FragmentCost, key=("fragment_id", "hardware_id", "input_shape", "batch")
        ),
        TableSpec("architectures", Architecture, key=("arch_id",), derived={"arch_id": ("graph",)}),
        TableSpec("runs", Run, key=("run_id",)),
    )
}

# Ingesting a folder loads tables in this order, so rows that others refer to come first.
TABLE_ORDER = tuple(TABLES)

RECORD_TABLES: dict[type, str] = {spec.record: name for name, spec in TABLES.items()}


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name``, or a KBError listing the tables there are."""
    from kb.errors import KBError

    try:
        return TABLES[name]
    except KeyError:
        raise KBError(f"unknown table {name!r}; the tables are: {', '.join(TABLES)}") from None
