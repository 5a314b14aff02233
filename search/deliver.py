"""The deliverable of a search: the best feasible configuration refitted on every search row,
scored once on the test rows no trial saw, exported, measured on the profile, and written as
``model.onnx`` with ``model_card.json`` beside it.

The final model is measured again (it learned from more rows than any trial's model); if it
breaks a limit after all, the next-best feasible configuration is tried, and the card says so.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kb.errors import KBError
from kb.keys import canonical_json
from kb.meta import code_version
from kb.schema import Trial
from search.constraints import is_feasible
from search.metrics import METRICS
from search.profiles import find_profile
from search.smac_search import SearchOutcome
from search.trial import TrialLimits, library_versions, plan_trial, run_final

MAX_CANDIDATES = 3


class NoFeasibleModel(KBError):
    """Every trial of a search broke a limit or failed."""


@dataclass(frozen=True)
class Delivered:
    model_path: Path
    card_path: Path
    card: dict


def deliver(kb, outcome: SearchOutcome, out_dir: Path) -> Delivered:
    """Refit, test, export and measure the best feasible configuration of ``outcome``."""
    settings = outcome.settings
    metric = METRICS[outcome.trials[0].metric] if outcome.trials else None
    candidates = _ranked_feasible(outcome.trials, metric)
    if not candidates:
        raise NoFeasibleModel(_no_feasible_message(outcome))
    profile = find_profile(settings.hardware, kb.root)
    out_dir.mkdir(parents=True, exist_ok=True)
    rejected = []
    for trial in candidates[:MAX_CANDIDATES]:
        config = json.loads(trial.config)
        with tempfile.TemporaryDirectory(prefix="metakb-final-") as folder:
            model_file = Path(folder) / "model.onnx"
            plan = plan_trial(outcome.dataset, config, profile, settings.seed,
                              metric=trial.metric, folds=settings.folds,
                              limits=TrialLimits(time_s=settings.trial_time_s, train_threads=1),
                              model_path=model_file)
            final = run_final(plan)
            broken = settings.limits.broken(final) if final.status == "ok" else final.failure_reason
            if broken:
                rejected.append({"trial_id": trial.trial_id, "config": config, "reason": broken})
                continue
            model_path = out_dir / "model.onnx"
            shutil.copyfile(model_file, model_path)
        card = model_card(outcome, trial, final, plan.hardware, rejected)
        card_path = out_dir / "model_card.json"
        card_path.write_text(json.dumps(card, indent=2, default=str) + "\n")
        return Delivered(model_path, card_path, card)
    raise NoFeasibleModel(
        f"no feasible model: the {len(rejected)} best configurations broke the limits when "
        f"refitted on all training rows ({'; '.join(r['reason'] for r in rejected)})")


def _ranked_feasible(trials, metric) -> list[Trial]:
    feasible = [t for t in trials if is_feasible(t)]
    if not feasible:
        return []
    top = max(t.fidelity for t in feasible)
    sign = -1 if metric.direction == "maximize" else 1
    # Ties keep the cheaper model.
    return sorted((t for t in feasible if t.fidelity == top),
                  key=lambda t: (sign * t.score, t.latency_p50_ms or 0.0))


def _no_feasible_message(outcome: SearchOutcome) -> str:
    counts = {}
    for t in outcome.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    limits = outcome.settings.limits
    asked = ", ".join(f"{name.replace('_', '-')} {value:g}" for name, value in
                      (("max_latency_ms", limits.max_latency_ms), ("max_memory_mb", limits.max_memory_mb),
                       ("max_model_kb", limits.max_model_kb)) if value is not None)
    closest = min((t for t in outcome.trials if t.latency_p50_ms is not None),
                  key=lambda t: t.latency_p50_ms, default=None)
    return (f"no feasible model: {len(outcome.trials)} trials, "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + (f", under {asked}" if asked else "")
            + (f"; the fastest measured was {closest.model_family} at p50 "
               f"{closest.latency_p50_ms:.3g} ms" if closest else "")
            + f". Every trial is recorded in the KB (run {outcome.run_id}).")


def model_card(outcome: SearchOutcome, trial: Trial, final: Trial, hardware, rejected: list) -> dict:
    """What the model is, how good and how costly it is, and why it was chosen."""
    settings = outcome.settings
    record = outcome.dataset.record
    warm = {canonical_json(w.config): w for w in outcome.warm_starts}
    origin = warm.get(trial.config)
    return {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model_file": "model.onnx",
        "configuration": json.loads(trial.config),
        "config_id": trial.config_id,
        "model_family": trial.model_family,
        "metric": trial.metric,
        "direction": trial.direction,
        "cv_score": trial.score,
        "cv_score_std": trial.score_std,
        "test_score": final.score,
        "test_rows": "the dataset's fixed test split (a fifth of its rows), unseen by every trial",
        "latency_ms": {"p50": final.latency_p50_ms, "p95": final.latency_p95_ms,
                       "batch_size": final.batch_size, "batch_p50": final.latency_batch_p50_ms,
                       "batch_p95": final.latency_batch_p95_ms},
        "peak_memory_mb": final.peak_memory_mb,
        "model_bytes": final.model_bytes,
        "n_parameters": final.n_parameters,
        "parity_error": final.parity_error,
        "limits": {"max_latency_ms": settings.limits.max_latency_ms,
                   "max_memory_mb": settings.limits.max_memory_mb,
                   "max_model_kb": settings.limits.max_model_kb},
        "meets_limits": settings.limits.broken(final) is None,
        "dataset": {"dataset_id": record.dataset_id, "name": record.name, "task": record.task,
                    "target": record.target, "n_rows": record.n_rows,
                    "n_features": record.n_features},
        "hardware": {"profile": settings.hardware, "hardware_id": hardware.hardware_id,
                     "cpu_model": hardware.cpu_model, "threads": hardware.threads,
                     "runtime": f"{hardware.runtime} {hardware.runtime_version}",
                     "execution_provider": hardware.execution_provider,
                     "quantization": hardware.quantization},
        "search": {"run_id": outcome.run_id, "trials": len(outcome.trials),
                   "feasible": len(outcome.feasible), "reused_from_kb": outcome.reused,
                   "objective": settings.objective, "warm_start": settings.warm_start,
                   "multi_fidelity": settings.multi_fidelity, "stopped_by": outcome.stopped_by},
        "evidence": {
            "trial_id": trial.trial_id,
            "from_warm_start": origin is not None,
            "warm_start": origin.to_json() if origin else None,
            "warm_start_configs": [w.to_json() for w in outcome.warm_starts],
            "refused_warm_start": [{"config": r.config, "reason": r.reason} for r in outcome.refused],
            "rejected_after_refit": rejected,
        },
        "seed": settings.seed,
        "code_version": code_version(),
        "library_versions": library_versions(),
    }
