"""The ``mobile-ops`` format: per-operator and whole-model latency of real CNNs on phones
(qed-usc/mobile-ml-benchmark, the tables of ``../shared/data/mobile_ops``). Latencies there
are in microseconds; the KB stores milliseconds.

- ``tflite_cnn_ops_gpu.csv`` / ``torch_cnn_ops_gpu.csv`` (``model, operation, feature,
  <phone>|gpu|float, <phone>|gpu|kernel, ...``): each operator shape becomes a ``fragments``
  row (kind ``tflite:CONV_2D``, ``pytorch:aten::add``, ...; params the source's shape
  description; input and output shapes as far as it gives them; FLOPs), each phone GPU a
  ``hardware`` row (kind external, runtime ``tflite`` or ``pytorch-vulkan``), and each
  (operator shape, phone) a ``fragment_costs`` row: the median over the operator's
  occurrences (one shape in several models costs a little differently in each; the fused
  kernel names are not kept). Each CNN becomes an ``architectures`` row (source
  ``mobile-ops tflite`` / ``mobile-ops pytorch``): its operators in execution order as a
  chain (the source lists operators, not how branches join), named by the model.
- ``tflite_cnn_e2e.csv`` / ``tflite_nas_e2e.csv`` (``model, FLOPS, size,
  <phone>|<cores>|<float|quant>|mean, ...|std``): each (model, phone, cores, precision) a
  trial: metric ``latency_ms`` (minimized), the mean as score and as ``latency_p50_ms``, the
  std in its details, ``model_bytes`` = size, config ``{"family": "tflite-cnn", "model":
  name}``, on a hardware row per phone and core setting (``pixel4 gpu``, ``s10 2large``;
  quantization int8 for quant). A CNN's trials name its architecture, so
  ``tflite_cnn_e2e.csv`` needs ``tflite_cnn_ops_gpu.csv`` beside it; the 1,000 generated NAS
  models have no operator table and no architecture. The dataset is ImageNet, by reference.

Each file is added whole or not at all, a damaged one rejected naming its row and field.
"""

from __future__ import annotations

import ast
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.ingest.external import number_column, write_file_rows
from kb.keys import canonical_json
from kb.schema import Architecture, Dataset, Fragment, FragmentCost, Hardware, Trial
from kb.tabular_io import check_content, read_csv_as_text

SOURCE = "mobile-ops"
OPS_FILES = {"tflite_cnn_ops_gpu.csv": ("tflite", "tflite"),
             "torch_cnn_ops_gpu.csv": ("pytorch", "pytorch-vulkan")}  # file: (kind prefix, runtime)
E2E_FILES = ("tflite_cnn_e2e.csv", "tflite_nas_e2e.csv")
E2E_NEEDS_OPS = {"tflite_cnn_e2e.csv": "tflite_cnn_ops_gpu.csv"}
LATENCY_METRIC = "latency_ms"
FAMILY = "tflite-cnn"
US_PER_MS = 1000.0
# Shape description keys, TFLite's and PyTorch's spelling.
_FLOPS = ("FLOPS", "flops")
_CHANNELS_OUT_KINDS = ("CONV_2D", "CONV_2D_GROUP", "FULLY_CONNECTED", "CONCATENATION")


def imagenet() -> Dataset:
    from kb.datasets import reference_dataset_id

    return Dataset(dataset_id=reference_dataset_id(SOURCE, "imagenet"), name="imagenet",
                   task="multiclass", target="label", n_rows=1_331_167, n_features=3 * 224 * 224,
                   n_classes=1000, source=SOURCE, origin="mobile-ml-benchmark:imagenet",
                   data_file=None)


def ingest_mobile_ops(kb, path: Path, *, on_conflict: str = "error", progress) -> list[FileReport]:
    known = (*OPS_FILES, *E2E_FILES)
    if path.is_file():
        if path.name not in known:
            raise KBError(f"{path}: the mobile-ops format reads {', '.join(known)}")
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not any(p.name in known for p in files):
            raise KBError(f"{path}: none of {', '.join(known)} here (a mobile-ml-benchmark folder)")
    reports = []
    for file in files:
        if file.name in OPS_FILES:
            report = _write(kb, file, operator_rows, "fragment_costs", on_conflict)
        elif file.name in E2E_FILES:
            report = _write(kb, file, end_to_end_rows, "trials", on_conflict)
        else:
            report = FileReport(file, skipped="not a mobile-ml-benchmark table read here")
        progress(report)
        reports.append(report)
    return reports


def _write(kb, path: Path, read, main_table: str, on_conflict: str) -> FileReport:
    try:
        check_content(path, "text")
        tables = read(path)
    except ValidationError as e:
        return FileReport(path, main_table, rejected=str(e if e.source else e.located(str(path))))
    except KBError as e:
        message = str(e)
        return FileReport(path, main_table, rejected=message if str(path) in message else f"{path}: {message}")
    return write_file_rows(kb, path, {t: rows for t, rows in tables.items() if len(rows)},
                           main_table=main_table, on_conflict=on_conflict)


# -- operator tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorTable:
    """An operator file read: each model's operators (fragment ids in order), the fragments,
    and each (fragment, phone) latency of every occurrence (ms)."""

    models: dict[str, list[str]]
    fragments: dict[str, Fragment]
    hardware: dict[str, Hardware]  # device column -> row
    latencies: dict[tuple[str, str], list[float]]  # (fragment id, device column) -> ms

    def median_ms(self, fragment_id: str, device: str) -> float | None:
        values = self.latencies.get((fragment_id, device))
        return statistics.median(values) if values else None


def phone_hardware(columns: dict[str, tuple[str, str, str, str]]) -> dict[str, Hardware]:
    """{column: hardware row} for each column's (phone, cores, precision, runtime); cores
    ``gpu`` or as the source names CPU core sets (``2large``). Ids derived in one pass."""
    from kb.schema import TABLES
    from kb.validation import prepare_rows

    records = {column: Hardware(name=f"{phone} {cores}", kind="external", source=SOURCE,
                                runtime=runtime, execution_provider="gpu" if cores == "gpu" else "cpu",
                                quantization="int8" if precision == "quant" else None)
               for column, (phone, cores, precision, runtime) in columns.items()}
    distinct = list(dict.fromkeys(records.values()))
    rows = prepare_rows(distinct, TABLES["hardware"]).table.to_pylist()
    with_ids = {record: Hardware(**row) for record, row in zip(distinct, rows, strict=True)}
    return {column: with_ids[record] for column, record in records.items()}


def read_operators(path: Path) -> OperatorTable:
    """An operator file (no KB here): ``OPS_FILES`` names its runtime."""
    prefix, runtime = OPS_FILES[path.name]
    table = read_csv_as_text(path)
    for column in ("model", "operation", "feature"):
        if column not in table.column_names:
            raise KBError(f"lacks the column {column!r}")
    devices = [c for c in table.column_names if c.endswith("|float")]
    if not devices:
        raise KBError("has no '<phone>|gpu|float' latency columns")
    latency = {}
    for device in devices:
        # Missing cells are operators the source did not time on that phone.
        present = np.array([v is not None for v in table.column(device).to_pylist()])
        values = np.full(table.num_rows, np.nan)
        if present.any():
            values[present] = number_column(table.filter(pa.array(present)), device, minimum=0.0)
        latency[device] = values / US_PER_MS
    operators = []  # (model, fragment row without its id) per row
    rows = zip(table.column("model").to_pylist(), table.column("operation").to_pylist(),
               table.column("feature").to_pylist())
    for row, (model, operation, feature) in enumerate(rows, start=1):
        if not model or not operation:
            raise ValidationError("is empty", row=row, field="model" if not model else "operation")
        operators.append((model, operator_fragment(f"{prefix}:{operation}", _feature(feature, row))))
    ids = _fragment_ids([f for _, f in operators])
    models: dict[str, list[str]] = defaultdict(list)
    fragments: dict[str, Fragment] = {}
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row, ((model, fragment), fragment_id) in enumerate(zip(operators, ids)):
        fragments.setdefault(fragment_id, replace(fragment, fragment_id=fragment_id))
        models[model].append(fragment_id)
        for device in devices:
            if np.isfinite(latency[device][row]):
                latencies[(fragment_id, device)].append(float(latency[device][row]))
    hardware = phone_hardware({d: (d.split("|")[0], "gpu", "float", runtime) for d in devices})
    return OperatorTable(dict(models), fragments, hardware, dict(latencies))


def _feature(text: str | None, row: int) -> dict:
    """The source's shape description, a Python dict literal (read as a literal, never run)."""
    try:
        value = ast.literal_eval(text or "")
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        raise ValidationError(f"{(text or '')[:40]!r} is not a shape description ({{'key': value, ...}})",
                              row=row, field="feature")
    out = {}
    for key, item in value.items():
        if isinstance(item, str):
            item = item.strip()
            if item in ("", "-"):
                continue  # not applicable to this operator
            try:
                item = int(item)
            except ValueError:
                pass
        out[str(key)] = item
    return out


def _fragment_ids(records: list[Fragment]) -> list[str]:
    """Each record's fragment id, derived once per distinct operator shape."""
    from fragments.graph import derived_ids

    distinct = {(r.kind, r.params, r.in_shape): r for r in records}
    ids = dict(zip(distinct, derived_ids("fragments", list(distinct.values()))))
    return [ids[(r.kind, r.params, r.in_shape)] for r in records]


def operator_fragment(kind: str, feature: dict) -> Fragment:
    """An operator shape as a ``fragments`` row, its id not yet derived."""
    flops = next((feature[k] for k in _FLOPS if isinstance(feature.get(k), int)), None)
    params = {k: v for k, v in feature.items() if k not in _FLOPS}
    lower = {k.lower(): v for k, v in params.items()}
    channels = lower.get("input_channel")
    size = lower.get("input_shape")
    in_shape = [v for v in (channels, size, size) if isinstance(v, int)] if isinstance(channels, int) \
        else [size] if isinstance(size, int) else []
    out_channels = (lower.get("filter") if kind.split(":", 1)[1] in _CHANNELS_OUT_KINDS
                    else lower.get("output_channel", channels))
    out_size = lower.get("output_shape", size)
    out_shape = [v for v in (out_channels, out_size, out_size) if isinstance(v, int)]
    return Fragment(kind=kind, params=canonical_json(params), in_shape=canonical_json(in_shape),
                    out_shape=canonical_json(out_shape), flops=flops)


def model_architectures(table: OperatorTable, source: str) -> dict[str, Architecture]:
    """Each model's operators in order as a chain ``architectures`` row, by model name. Models
    with the same operators (the source lists no residual adds: squeezenet and squeezeresnet)
    are one row, named by all of them."""
    from fragments.graph import derived_ids

    by_chain: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for model, fragment_ids in table.models.items():
        by_chain[tuple(fragment_ids)].append(model)
    records = []
    for fragment_ids, models in by_chain.items():
        nodes = [{"id": i, "kind": table.fragments[f].kind,
                  "params": json.loads(table.fragments[f].params),
                  "in_shape": json.loads(table.fragments[f].in_shape)}
                 for i, f in enumerate(fragment_ids)]
        graph = {"directed": True, "multigraph": False,
                 "graph": {"input_shape": nodes[0]["in_shape"]}, "nodes": nodes,
                 "edges": [{"source": i, "target": i + 1} for i in range(len(nodes) - 1)]}
        records.append(Architecture(graph=canonical_json(graph), fragments=canonical_json(list(fragment_ids)),
                                    name=" = ".join(sorted(models)), source=source))
    ids = derived_ids("architectures", records)
    return {model: replace(r, arch_id=i) for r, i in zip(records, ids)
            for model in r.name.split(" = ")}


def operator_rows(path: Path) -> dict[str, list]:
    table = read_operators(path)
    costs = [FragmentCost(fragment_id=fragment_id, hardware_id=table.hardware[device].hardware_id,
                          input_shape=table.fragments[fragment_id].in_shape, batch=1,
                          latency_p50_ms=table.median_ms(fragment_id, device),
                          flops=table.fragments[fragment_id].flops, source=SOURCE)
             for fragment_id, device in table.latencies]
    source = f"{SOURCE} {OPS_FILES[path.name][0]}"
    return {"hardware": list(table.hardware.values()), "fragments": list(table.fragments.values()),
            "architectures": _distinct(model_architectures(table, source)),
            "fragment_costs": costs}


# -- whole-model latency -----------------------------------------------------------------------


def end_to_end_rows(path: Path) -> dict[str, list]:
    architectures: dict[str, Architecture] = {}
    if path.name in E2E_NEEDS_OPS:
        ops = path.with_name(E2E_NEEDS_OPS[path.name])
        if not ops.is_file():
            raise KBError(f"needs {ops.name} beside it (the operators of the models it names)")
        try:
            architectures = model_architectures(read_operators(ops), f"{SOURCE} tflite")
        except KBError as e:
            raise KBError(f"{ops.name}, which it needs, is damaged: {e}") from None
    table = read_csv_as_text(path)
    if "model" not in table.column_names:
        raise KBError("lacks the column 'model'")
    models = table.column("model").to_pylist()
    missing = [m for m in models if architectures and m not in architectures]
    if missing:
        raise ValidationError(f"model {missing[0]!r} has no operators in {E2E_NEEDS_OPS[path.name]}",
                              row=models.index(missing[0]) + 1, field="model")
    flops = number_column(table, "FLOPS", minimum=0.0) if "FLOPS" in table.column_names else None
    size = number_column(table, "size", minimum=0.0) if "size" in table.column_names else None
    dataset = imagenet()
    means = [c for c in table.column_names if c.endswith("|mean")]
    if not means:
        raise KBError("has no '<phone>|<cores>|<precision>|mean' columns")
    hardware = phone_hardware({c: (*c.split("|")[:3], "tflite") for c in means})
    trials = []
    for column in means:
        row = hardware[column]
        mean = number_column(table, column, positive=True) / US_PER_MS
        std_column = column.removesuffix("mean") + "std"
        std = (number_column(table, std_column, minimum=0.0) / US_PER_MS
               if std_column in table.column_names else None)
        for i, model in enumerate(models):
            details = {"latency_std_ms": None if std is None else float(std[i]),
                       "flops": None if flops is None else int(flops[i])}
            trials.append(Trial(
                dataset_id=dataset.dataset_id, hardware_id=row.hardware_id,
                config=canonical_json({"family": FAMILY, "model": model}), model_family=FAMILY,
                metric=LATENCY_METRIC, direction="minimize", status="ok", source=SOURCE,
                score=float(mean[i]), latency_p50_ms=float(mean[i]),
                model_bytes=None if size is None else int(size[i]),
                arch_id=architectures[model].arch_id if architectures else None,
                details=canonical_json({k: v for k, v in details.items() if v is not None})))
    return {"datasets": [dataset], "hardware": list(dict.fromkeys(hardware.values())),
            "architectures": _distinct(architectures), "trials": _trial_table(trials)}


def _distinct(architectures: dict[str, Architecture]) -> list[Architecture]:
    return list({a.arch_id: a for a in architectures.values()}.values())


def _trial_table(trials: list[Trial]) -> pa.Table:
    """Trials as an Arrow table (66,000 of them validate far faster column-wise)."""
    from kb.schema import TABLES

    columns = [c for c in TABLES["trials"].column_names if c not in ("trial_id", "config_id")]
    values = {c: [getattr(t, c) for t in trials] for c in columns}
    return pa.table({c: v for c, v in values.items() if any(x is not None for x in v)})
