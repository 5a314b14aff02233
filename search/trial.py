"""One trial: cross-validate a configuration on a dataset, refit it, export it to ONNX, measure
it on a hardware profile, and describe all of it as a ``Trial`` record.

``run_trial`` is a plain function for a Dask worker as much as for ``kb bench``: its inputs
pickle, it returns records, and it raises only for a caller's mistake (an unknown family, a
metric that does not fit the task, a profile this machine cannot run), never for a model's.
It is ``plan_trial`` (those checks, on the machine that will run the trial) then
``run_planned``, for callers that report mistakes before saying a trial has started.
What a model does wrong is recorded, with the stage in ``failure_reason``:

========== ============ =============================================================
status     reason       when
========== ============ =============================================================
failed     training:    fitting or scoring raised, or the score is not finite
failed     export:      the model does not convert to ONNX (or to int8)
failed     measurement: ONNX Runtime cannot load or run the model
failed     parity:      the ONNX outputs differ from the trained model's beyond tolerance
failed     memory limit: the trial's processes outgrew the trial memory limit
failed     crashed:     the trial's process died (a signal, the system out of memory)
failed     internal:    a bug in metakb rather than in the model (please report it)
infeasible memory:      inference peaked above the profile's memory ceiling
timeout    timeout:     the trial outran its time limit
========== ============ =============================================================

A failed or infeasible record keeps everything measured before the failure (the score when
cross-validation finished, latencies when measurement did).

Rows: a fifth of every dataset is its test split (``search.cv.test_split``, the same rows for
every trial of the dataset), which no trial sees; only the final model a search delivers is
scored on it. Cross-validation uses every other row. The refitted model, the one exported and
measured, learns from all those rows but a parity hold-out (10%, at most 200 rows) on which the ONNX session
and the trained model are compared: rows a model never saw are where float32 thresholds and
distance ties show up. Training time counts cross-validation and refit; measuring time
includes starting the measuring process.
"""

from __future__ import annotations

import math
import platform
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from kb.datasets import LoadedDataset
from kb.errors import KBError, ValidationError, first_line
from kb.keys import canonical_json
from kb.meta import code_version, package_version
from kb.schema import Hardware, Trial
from search.families import normalize_config
from search.hardware import detect_machine, hardware_record, require_usable, threads_used
from search.metrics import METRICS, metric_for
from search.preprocess import FeatureLayout
from search.profiles import Profile
from kb.validation import with_keys

SOURCE = "metakb"
ARCHITECTURE_ROWS = "architecture_rows"  # not a Trial field: the rows a trial's arch_id names
PARITY_FRACTION = 0.1
PARITY_MAX_ROWS = 200
SINGLE_ROW_INPUTS = 32  # distinct rows the batch-1 runs cycle through
DEFAULT_MEASURE_TIMEOUT_S = 600.0
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "torch", "numpy", "protobuf")


@dataclass(frozen=True)
class TrialLimits:
    """What one trial may use. ``isolate=False`` runs it in this process, where neither limit
    can be enforced (for debugging and fast tests); the measurement still runs apart."""

    time_s: float | None = 600.0
    memory_mb: float | None = None  # the trial's processes together (training included)
    train_threads: int | None = None  # None: every usable core
    isolate: bool = True


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    hardware: Hardware  # the profile on the machine that ran the trial (a Dask worker's)
    architecture_rows: tuple = ()  # the Architecture and Fragment rows of a fragment-built network

    def write(self, kb, *, on_conflict: str = "error"):
        """Store the hardware row (if new), the architecture (if any) and the trial; returns
        the trial's AppendResult."""
        kb.append("hardware", [self.hardware], on_conflict="keep")
        write_architecture_rows(kb, self.architecture_rows)
        return kb.append("trials", [self.trial], on_conflict=on_conflict)


def write_architecture_rows(kb, rows) -> None:
    from kb.schema import Architecture, Fragment

    fragments = [r for r in rows if isinstance(r, Fragment)]
    architectures = [r for r in rows if isinstance(r, Architecture)]
    if fragments:
        kb.append("fragments", fragments, on_conflict="keep")
    if architectures:
        kb.append("architectures", architectures, on_conflict="keep")


@dataclass(frozen=True)
class TrialPlan:
    """A trial checked and resolved on the machine that runs it (``plan_trial``); it pickles,
    and the trial's own process receives it whole."""

    dataset: LoadedDataset
    config: dict  # complete: every key of the family, defaults filled in
    profile: Profile
    seed: int
    metric: str
    folds: int
    fidelity: float
    hardware: Hardware  # the profile on this machine
    threads: int  # inference threads on this machine
    train_threads: int
    limits: TrialLimits
    model_path: str | None
    final: bool = False  # fit on all search rows, score on the test rows (``search.deliver``)

    @property
    def measure_timeout_s(self) -> float:
        return self.limits.time_s or DEFAULT_MEASURE_TIMEOUT_S


def run_trial(dataset: LoadedDataset, config: dict, profile: Profile, seed: int = 0, *,
              metric: str | None = None, folds: int = 5, fidelity: float = 1.0,
              limits: TrialLimits = TrialLimits(), run_id: str | None = None,
              source: str = SOURCE, model_path: str | Path | None = None) -> TrialResult:
    """Evaluate ``config`` on ``dataset`` and measure it on ``profile``.

    ``fidelity`` is the fraction of training rows models learn from (validation folds stay
    whole). ``model_path``, if given, receives the ONNX model as measured (int8 on an int8
    profile). Raises KBError for invalid arguments; every model outcome is a record.
    """
    plan = plan_trial(dataset, config, profile, seed, metric=metric, folds=folds,
                      fidelity=fidelity, limits=limits, model_path=model_path)
    return run_planned(plan, run_id=run_id, source=source)


def plan_trial(dataset: LoadedDataset, config: dict, profile: Profile, seed: int = 0, *,
               metric: str | None = None, folds: int = 5, fidelity: float = 1.0,
               limits: TrialLimits = TrialLimits(),
               model_path: str | Path | None = None) -> TrialPlan:
    """Check ``run_trial``'s arguments (a KBError names a mistake) and resolve them on this
    machine; nothing runs yet."""
    task = dataset.record.task
    config = normalize_config(config, task)
    chosen = metric_for(task, metric)
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise KBError(f"seed must be a whole number in [0, 2**32), not {seed!r}")
    if not (isinstance(folds, int) and folds >= 2):
        raise KBError(f"folds must be a whole number >= 2, not {folds!r}")
    if not (0 < fidelity <= 1):
        raise KBError(f"fidelity is the fraction of training rows used, in (0, 1], not {fidelity!r}")
    machine = detect_machine()
    require_usable(profile, machine)
    return TrialPlan(
        dataset=dataset, config=config, profile=profile, seed=seed, metric=chosen.name,
        folds=folds, fidelity=float(fidelity), hardware=hardware_record(machine, profile),
        threads=threads_used(profile, machine),
        train_threads=limits.train_threads or machine.cores, limits=limits,
        model_path=str(model_path) if model_path is not None else None)


def run_planned(plan: TrialPlan, *, run_id: str | None = None,
                source: str = SOURCE) -> TrialResult:
    """Run a planned trial (see ``run_trial``)."""
    started = datetime.now(timezone.utc)
    values = _run(plan)
    architecture_rows = values.pop(ARCHITECTURE_ROWS, ())
    identity = dict(
        dataset_id=plan.dataset.record.dataset_id, hardware_id=plan.hardware.hardware_id,
        config=canonical_json(plan.config), model_family=plan.config["family"],
        metric=plan.metric, direction=METRICS[plan.metric].direction, source=source,
        seed=plan.seed, fidelity=plan.fidelity, run_id=run_id, code_version=code_version(),
        library_versions=canonical_json(library_versions()),
        started_at=started, finished_at=datetime.now(timezone.utc))
    try:
        trial = with_keys(Trial(**identity, **values))
    except ValidationError as e:
        # A value the store would refuse; the trial is still recorded, as a failure to fix.
        trial = with_keys(Trial(**identity, status="failed",
                                failure_reason=f"internal: the trial's values are invalid ({e})"))
    return TrialResult(trial, plan.hardware, architecture_rows)


def run_final(plan: TrialPlan) -> Trial:
    """The final model of a search: fitted on every search row and scored once on the test
    rows (``score`` is the test score), exported and measured. The record describes the
    model; it is not a trial for the KB, whose trials are all cross-validated."""
    return run_planned(replace(plan, final=True)).trial


def _run(plan: TrialPlan) -> dict:
    """The trial's values (Trial fields), run in a limited child process or here."""
    limits = plan.limits
    if not limits.isolate:
        try:
            return evaluate(plan, report=lambda **_: None)
        except Exception as e:  # a bug outside the stage guards; still a record
            return _failed("internal", first_line(e, with_type=True))
    from search.isolation import Limits, run_isolated

    finished = run_isolated(evaluate, {"plan": plan}, Limits(limits.time_s, limits.memory_mb))
    if finished.ended == "returned":
        return finished.value
    reached = dict(finished.reported)
    stage = reached.pop("stage", "start-up (loading libraries and data)")
    if finished.ended == "timeout":
        return {**reached, "status": "timeout", "failure_reason":
                f"timeout: the trial took longer than {limits.time_s:g} s (it was in {stage})"}
    if finished.ended == "memory":
        return {**reached, **_failed("memory limit", (
            f"the trial's processes used more than {limits.memory_mb:g} MB "
            f"(it was in {stage})"))}
    if finished.ended == "died":
        return {**reached, **_failed("crashed", f"{finished.error} (it was in {stage})")}
    return {**reached, **_failed("internal", f"{finished.error} (it was in {stage})")}


def _failed(stage: str, reason: str) -> dict:
    return {"status": "failed", "failure_reason": f"{stage}: {reason}"}


def evaluate(plan: TrialPlan, report) -> dict:
    """Train, export and measure; returns Trial fields. Runs in the trial's own process.

    ``report(stage=..., **fields)`` records progress, so a trial cut short by a limit still
    says where it was and keeps what it had measured.
    """
    from metafeatures.threads import limit_threads

    # A limit reaches only the thread pools of libraries already loaded, hence loading
    # scikit-learn's estimators first (its OpenMP, SciPy's BLAS): without that
    # HistGradientBoosting takes every core, and on a busy machine its spinning threads
    # stretch training many times over.
    with warnings.catch_warnings(), limit_threads(plan.train_threads, load=("sklearn.ensemble",)):
        # Convergence and feature-name warnings would reach a user's terminal from every
        # fold; what matters about the model is in the record.
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(plan.seed)
        data = _prepare(plan, rng)
        values: dict = {"batch_size": plan.profile.batch_size}
        try:
            model = _train(plan, data, values, report)
            _name_architecture(model, values)
            model_bytes = _export(plan, data, model, values, report)
            outputs = _measure(plan, data, model_bytes, values, report, rng)
            _check_parity(plan, data, model, outputs, values)
        except _StageFailed as failure:
            return {**values, "status": "failed", "failure_reason": str(failure)}
    ceiling = plan.profile.memory_limit_mb
    if ceiling is not None and values["peak_memory_mb"] > ceiling:
        return {**values, "status": "infeasible", "failure_reason": (
            f"memory: inference peaked at {values['peak_memory_mb']:.1f} MB, above the "
            f"{ceiling:g} MB ceiling of profile {plan.profile.name}")}
    return {**values, "status": "ok"}


class _StageFailed(Exception):
    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")


@dataclass(frozen=True)
class _Data:
    """The dataset as the stages use it."""

    X: pd.DataFrame  # the raw features, which the ONNX model is fed from
    layout: FeatureLayout
    frame: pd.DataFrame  # ``layout.model_frame(X)``, which the pipeline learns from
    y: np.ndarray  # class codes 0..C-1, or values
    classes: np.ndarray | None  # the labels the codes stand for
    refit_rows: np.ndarray
    parity_rows: np.ndarray  # held out of the refit

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)


def _prepare(plan: TrialPlan, rng: np.random.Generator) -> _Data:
    """The rows a trial sees: the dataset's search rows (``search.cv.test_split``), a parity
    hold-out taken from them. A final model learns from all search rows and is checked, and
    scored, on the test rows."""
    from search.cv import fidelity_rows, sample_keeping_classes, test_split
    from search.preprocess import feature_layout

    y, classes = encode_target(plan.dataset.y, plan.dataset.record.task)
    search_rows, test_rows = test_split(None if classes is None else y, len(y),
                                        plan.dataset.record.dataset_id)
    X = plan.dataset.X
    if plan.final:
        refit_rows, parity_rows = search_rows, test_rows
    else:
        X, y = X.iloc[search_rows].reset_index(drop=True), y[search_rows]
        codes = None if classes is None else y
        everything = np.arange(len(X))
        n_parity = min(PARITY_MAX_ROWS, max(1, round(PARITY_FRACTION * len(X))))
        refit_rows = sample_keeping_classes(everything, codes, len(X) - n_parity, rng)
        parity_rows = np.setdiff1d(everything, refit_rows)
        refit_rows = fidelity_rows(refit_rows, codes, plan.fidelity, rng)
    layout = feature_layout(X)
    return _Data(X=X, layout=layout, frame=layout.model_frame(X), y=y, classes=classes,
                 refit_rows=refit_rows, parity_rows=parity_rows)


def _train(plan: TrialPlan, data: _Data, values: dict, report):
    """Cross-validate, then refit; the refitted pipeline is the model exported."""
    from sklearn.pipeline import Pipeline

    from search.cv import cross_validate, fit
    from search.families import build_estimator
    from search.metrics import METRICS
    from search.preprocess import build_preprocessor

    task, config = plan.dataset.record.task, plan.config

    def make_model():
        preprocess = build_preprocessor(data.layout, imputation=config["imputation"],
                                        scaling=config["scaling"], encoding=config["encoding"])
        return Pipeline([("preprocess", preprocess),
                         ("model", build_estimator(config, task, plan.seed, plan.train_threads))])

    started = time.perf_counter()
    if plan.final:
        return _train_final(plan, data, values, report, make_model, started)
    try:
        cv = cross_validate(make_model, data.frame, data.y, data.n_classes,
                            METRICS[plan.metric], plan.folds, plan.seed, plan.fidelity,
                            lambda i, n: report(stage=f"cross-validation (fold {i} of {n})"))
        values.update(score=cv.score, score_std=cv.score_std)
        report(stage="refit", **values)
        model = fit(make_model(), data.frame.iloc[data.refit_rows], data.y[data.refit_rows])
    except Exception as e:
        raise _StageFailed("training", first_line(e, with_type=True)) from e
    values["train_seconds"] = time.perf_counter() - started
    return model


def _train_final(plan: TrialPlan, data: _Data, values: dict, report, make_model, started: float):
    """Fit on every search row and score once on the test rows: the final model's score."""
    from search.cv import fit, predictions
    from search.metrics import METRICS

    report(stage="final fit")
    try:
        model = fit(make_model(), data.frame.iloc[data.refit_rows], data.y[data.refit_rows])
        test = data.parity_rows
        score = float(METRICS[plan.metric].compute(
            data.y[test], predictions(model, data.frame.iloc[test], data.n_classes)))
        if not math.isfinite(score):
            raise ValueError(f"{plan.metric} is {score} on the test rows")
    except Exception as e:
        raise _StageFailed("training", first_line(e, with_type=True)) from e
    values.update(score=score, train_seconds=time.perf_counter() - started)
    return model


def _name_architecture(model, values: dict) -> None:
    """A network built from fragments is named by its architecture: ``arch_id`` on the trial,
    and the ``architectures`` and ``fragments`` rows it refers to, for the caller to store."""
    graph = getattr(model[-1], "architecture_", None)
    if graph is None:
        return
    from fragments.graph import architecture_record, fragment_records, instances

    architecture = architecture_record(graph, source=SOURCE)
    values["arch_id"] = architecture.arch_id
    values[ARCHITECTURE_ROWS] = (architecture, *fragment_records(instances(graph).values()))


def _export(plan: TrialPlan, data: _Data, model, values: dict, report) -> bytes:
    """The model as ONNX bytes, quantized if the profile says so."""
    from search.export import ExportError, count_parameters, quantize_int8, to_onnx

    report(stage="export", **values)
    started = time.perf_counter()
    try:
        onx = to_onnx(model, data.layout, plan.dataset.record.task, plan.config,
                      classes=None if data.classes is None else [str(c) for c in data.classes])
        values["n_parameters"] = count_parameters(onx)
        if plan.profile.quantization == "int8":
            onx, values["quantized_weights"] = quantize_int8(onx)
    except ExportError as e:
        raise _StageFailed("export", str(e)) from e
    model_bytes = onx.SerializeToString()
    values.update(model_bytes=len(model_bytes), export_seconds=time.perf_counter() - started)
    return model_bytes


def _measure(plan: TrialPlan, data: _Data, model_bytes: bytes, values: dict, report,
             rng: np.random.Generator) -> np.ndarray:
    """Latency and memory on the profile, in a fresh process; returns the parity outputs."""
    from search.export import output_name
    from search.measure import MeasureError, MeasureRequest, measure_in_fresh_process

    report(stage="measurement", **values)
    started = time.perf_counter()
    X, layout, batch_size = data.X, data.layout, plan.profile.batch_size
    with tempfile.TemporaryDirectory(prefix="metakb-model-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(model_bytes)
        if plan.model_path:
            shutil.copyfile(path, plan.model_path)
        timing_rows = rng.permutation(len(X))[:SINGLE_ROW_INPUTS]
        batch_rows = rng.choice(len(X), batch_size, replace=batch_size > len(X))
        request = MeasureRequest(
            model_path=str(path), profile=plan.profile, threads=plan.threads,
            single_rows=[layout.onnx_inputs(X.iloc[[i]]) for i in timing_rows],
            batch=layout.onnx_inputs(X.iloc[batch_rows]),
            parity_rows=layout.onnx_inputs(X.iloc[data.parity_rows]),
            output=output_name(plan.dataset.record.task))
        try:
            measured = measure_in_fresh_process(request, plan.measure_timeout_s)
        except MeasureError as e:
            raise _StageFailed("measurement", str(e)) from e
    values.update(
        latency_p50_ms=measured.latency_p50_ms, latency_p95_ms=measured.latency_p95_ms,
        latency_batch_p50_ms=measured.batch_p50_ms, latency_batch_p95_ms=measured.batch_p95_ms,
        peak_memory_mb=measured.peak_memory_mb, background_cpu=measured.background_cpu,
        measure_seconds=time.perf_counter() - started)
    return measured.outputs


def _check_parity(plan: TrialPlan, data: _Data, model, outputs: np.ndarray, values: dict) -> None:
    """The ONNX outputs against the trained model's on the held-out rows."""
    rows = data.frame.iloc[data.parity_rows]
    classifier = data.n_classes is not None
    reference = np.asarray(model.predict_proba(rows) if classifier else model.predict(rows),
                           dtype=np.float64)
    difference = np.abs(np.asarray(outputs, dtype=np.float64).reshape(reference.shape) - reference)
    error = float(difference.max()) if difference.size else 0.0
    values["parity_error"] = error if math.isfinite(error) else None
    # Regression outputs are judged in standard deviations of the target, so one tolerance
    # serves house prices and percentages alike; the stored error stays in target units.
    tolerance = plan.profile.tolerance
    allowed = tolerance * (1.0 if classifier else (float(np.std(data.y)) or 1.0))
    if not error <= allowed:  # NaN fails too
        raise _StageFailed("parity", (
            f"the ONNX model differs from the trained model by up to {error:.3g} "
            f"({'probability' if classifier else 'target units'}) on {len(rows)} held-out "
            f"rows; the profile allows {allowed:.3g}"
            + ("" if classifier else f" ({tolerance:g} standard deviations)")))


def encode_target(y, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(targets, classes): class codes 0..C-1 and the labels they stand for, or floats."""
    if task == "regression":
        return y.to_numpy(dtype=np.float64), None
    values = y.to_numpy()
    if values.dtype == object:  # mixed kinds cannot be sorted; their text can
        values = values.astype(str)
    classes, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), classes


def library_versions() -> dict:
    installed = {name: package_version(name) for name in LIBRARIES}
    return {"python": platform.python_version(),
            **{name: v for name, v in installed.items() if v is not None}}
