"""The audit as one self-contained HTML page: tables for what is read, plots (inline SVG,
drawn by matplotlib) for what is seen: score-latency Pareto fronts per hardware row, warm
against cold best-so-far curves, claimed against re-measured results, and the datasets in
meta-feature space. The page loads nothing from anywhere and runs no script."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np

from kb.audit.audit import AuditReport, success_json
from kb.audit.coverage import FEATURE_EDGES, ROW_EDGES, all_regions
from kb.audit.value import PORTFOLIO, RANDOM, RECOMMENDER
from kb.audit.verdict import FAIL, PASS, SKIPPED, WARN

MAX_PANELS = 24  # Pareto panels per hardware row
TASK_COLOURS = {"binary": "#1f77b4", "multiclass": "#2ca02c", "regression": "#d62728"}
METHOD_COLOURS = {RECOMMENDER: "#d62728", PORTFOLIO: "#1f77b4", RANDOM: "#7f7f7f"}
STATUS_COLOURS = {PASS: "#1a7f37", SKIPPED: "#6e7781", WARN: "#9a6700", FAIL: "#cf222e"}

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #1f2328; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; text-transform: uppercase; }
figure { margin: 1em 0; } figcaption { color: #57606a; font-size: 13px; }
figure svg { max-width: 100%; height: auto; }
details { margin: 0.5em 0; } .muted { color: #57606a; }
"""


def render_html(report: AuditReport, *, kb_path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")  # no display; the figures become SVG text
    parts = [f"<h1>metakb audit</h1><p class='muted'>{html.escape(kb_path)} · "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {len(report.successes)} known "
             f"successes · overall <span class='status' style='color:"
             f"{STATUS_COLOURS[report.status]}'>{report.status}</span></p>",
             "<h2 id='checks'>Checks</h2>", _checks_table(report)]
    parts += ["<h2 id='pareto'>Score against latency</h2>", _pareto_section(report)]
    parts += ["<h2 id='warm-cold'>Warm against cold</h2>", _warm_cold_section(report)]
    parts += ["<h2 id='reproducibility'>Reproducibility</h2>", _reproducibility_section(report)]
    parts += ["<h2 id='coverage'>Coverage</h2>", _coverage_section(report)]
    parts += ["<h2 id='findings'>Findings</h2>", _findings(report)]
    parts += ["<h2 id='successes'>Known successes</h2>", _successes_table(report)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>metakb audit</title><style>" + CSS + "</style></head><body>"
            + "\n".join(parts) + "</body></html>")


# -- pieces ------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(header)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class='num'>{_text(v)}</td>" if n else f"<td>{_text(v)}</td>"
        for v, n in zip(row, numeric)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Markup):
        return value
    return html.escape(str(value))


class Markup(str):
    """HTML made here; every other string is escaped (dataset names come from users)."""


def _status(status: str) -> Markup:
    return Markup(f"<span class='status' style='color:{STATUS_COLOURS[status]}'>{html.escape(status)}</span>")


def _figure(fig, caption: str) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prologue and doctype, invalid inside HTML
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _checks_table(report: AuditReport) -> str:
    return _table(["check", "status", "summary"],
                  [(c.name, _status(c.status), c.summary) for c in report.checks])


def _pareto_front(points, direction: str) -> list[tuple[float, float]]:
    """Points no other point beats on both latency (lower) and score."""
    sign = 1 if direction == "maximize" else -1
    front, best = [], -np.inf
    for latency, score, _ in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if sign * score > best:
            front.append((latency, score))
            best = sign * score
    return front


def _panels(n: int):
    """A figure of ``n`` small panels, four to a row, and the panels in order."""
    import matplotlib.pyplot as plt

    columns = min(4, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def _pareto_section(report: AuditReport) -> str:
    from matplotlib.ticker import NullFormatter

    if not report.trials_by_hardware:
        return "<p>No trial holds both a score and a measured latency.</p>"
    out = []
    for hardware, problems in sorted(report.trials_by_hardware.items()):
        names = sorted(problems)[:MAX_PANELS]
        fig, axes = _panels(len(names))
        for ax, name in zip(axes, names):
            problem = problems[name]
            points = problem["points"]
            latency, score = np.array([p[0] for p in points]), np.array([p[1] for p in points])
            ax.scatter(latency, score, s=9, color="#8c959f", label="trial")
            front = _pareto_front(points, problem["direction"])
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="#d9822b",
                    label="Pareto front")
            won = [p for p in points if p[2]]
            if won:
                ax.scatter([p[0] for p in won], [p[1] for p in won], marker="*", s=120,
                           color="#cf222e", zorder=3, label="known success")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
            ax.set_title(name, fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].legend(fontsize=6)
        fig.supxlabel("latency p50, batch 1 (ms, log)", fontsize=9)
        fig.supylabel("cross-validated score", fontsize=9)
        fig.tight_layout()
        more = f" (the first {MAX_PANELS} of {len(problems)})" if len(problems) > MAX_PANELS else ""
        out.append(f"<h3>{html.escape(hardware)}</h3>" + _figure(
            fig, f"Every scored trial on this hardware row, per dataset{more}: the orange line is "
                 f"the score-latency Pareto front, the red star the known success."))
    return "\n".join(out)


def _warm_cold_section(report: AuditReport) -> str:
    import matplotlib.pyplot as plt

    out = []
    if report.replays:
        fig, ax = plt.subplots(figsize=(7, 4))
        for method in (RECOMMENDER, PORTFOLIO, RANDOM):
            curves = [r.curves[method] for r in report.replays if method in r.curves]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            values = np.array([c[:length] for c in curves])
            x = np.arange(1, length + 1)
            ax.plot(x, np.median(values, axis=0), color=METHOD_COLOURS[method], label=method, marker="o", ms=3)
            ax.fill_between(x, np.quantile(values, 0.25, axis=0), np.quantile(values, 0.75, axis=0),
                            color=METHOD_COLOURS[method], alpha=0.15)
        ax.set_xlabel("configurations tried")
        ax.set_ylabel("best regret so far (0 = best known)")
        ax.legend()
        out.append(_figure(fig, f"Leave-one-dataset-out over {len(report.replays)} datasets: each "
                                f"dataset removed from the KB, its known configurations tried in "
                                f"the order each method ranks them (random order: the exact "
                                f"expectation). Median and interquartile range."))
        value = next((c for c in report.checks if c.name == "value"), None)
        if value and value.data.get("regret"):
            out.append(_regret_table(value.data))
    else:
        out.append("<p>No dataset has enough scored configurations to replay.</p>")
    if report.search_pairs:
        pairs = report.search_pairs[:12]
        fig, axes = _panels(len(pairs))
        for ax, pair in zip(axes, pairs):
            for label, curve, colour in (("warm", pair.warm, METHOD_COLOURS[RECOMMENDER]),
                                         ("cold", pair.cold, METHOD_COLOURS[RANDOM])):
                ax.plot(np.arange(1, len(curve) + 1), [np.nan if v is None else v for v in curve],
                        color=colour, label=label, drawstyle="steps-post")
            ax.set_title(f"{pair.dataset} ({pair.metric})", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].legend(fontsize=7)
        fig.supxlabel("trials", fontsize=9)
        fig.supylabel("best feasible score so far", fontsize=9)
        fig.tight_layout()
        out.append(_figure(fig, "Searches this KB ran warm-started and cold on the same dataset, "
                                "seed and limits."))
    return "\n".join(out)


def _regret_table(value: dict) -> str:
    rows = []
    for method, r in value["regret"].items():
        against = value["against"].get(method)
        rows.append((method, r["n"], r["mean"], r["median"], r["p90"],
                     "" if against is None else f"{against['wins']}/{against['ties']}/{against['losses']}"))
    return _table(["first pick", "datasets", "mean regret", "median", "90th percentile",
                   "recommender wins/ties/losses against it"], rows,
                  [False, True, True, True, True, False])


def _reproducibility_section(report: AuditReport) -> str:
    import matplotlib.pyplot as plt

    check = next(c for c in report.checks if c.name == "reproducible")
    reruns = [r for r in check.data.get("reruns", []) if r["rerun_score"] is not None]
    if not reruns:
        return f"<p>{html.escape(check.summary)}.</p>"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for same, colour, label in ((True, "#1a7f37", "same hardware"), (False, "#9a6700", "other hardware")):
        mine = [r for r in reruns if r["same_hardware"] == same]
        if not mine:
            continue
        left.errorbar([r["claimed_score"] for r in mine], [r["rerun_score"] for r in mine],
                      xerr=[r["score_std"] or 0 for r in mine], fmt="o", color=colour, label=label)
        timed = [r for r in mine if r["claimed_latency_ms"] and r["rerun_latency_ms"]]
        right.scatter([r["claimed_latency_ms"] for r in timed], [r["rerun_latency_ms"] for r in timed],
                      color=colour, label=label)
    for ax, name in ((left, "score"), (right, "latency p50 (ms)")):
        low, high = ax.get_xlim()
        low, high = min(low, ax.get_ylim()[0]), max(high, ax.get_ylim()[1])
        ax.plot([low, high], [low, high], color="#8c959f", lw=1, ls="--")
        ax.set_xlabel(f"claimed {name}")
        ax.set_ylabel(f"re-measured {name}")
        ax.legend(fontsize=8)
    right.set_xscale("log")
    right.set_yscale("log")
    fig.tight_layout()
    rows = [(r["success"], r["claimed_score"], r["rerun_score"], r["score_std"],
             r["claimed_latency_ms"], r["rerun_latency_ms"], r["latency_ratio"],
             "yes" if r["same_hardware"] else "no") for r in check.data["reruns"]]
    return (_figure(fig, "Each re-run success: claimed against re-measured score (bars: the "
                         "claim's CV spread) and latency. On the dashed line, a claim reproduces.")
            + _table(["success", "claimed score", "re-measured", "CV spread", "claimed ms",
                      "re-measured ms", "latency ratio", "same hardware"], rows,
                     [False, True, True, True, True, True, True, False]))


def _coverage_section(report: AuditReport) -> str:
    import matplotlib.pyplot as plt

    out = []
    if report.coverage_map:
        fig, ax = plt.subplots(figsize=(7, 5))
        for task, colour in TASK_COLOURS.items():
            for has, face in ((True, colour), (False, "none")):
                points = [p for p in report.coverage_map if p.task == task and p.has_success == has]
                if points:
                    ax.scatter([p.x for p in points], [p.y for p in points], s=40, edgecolors=colour,
                               facecolors=face, label=f"{task}, {'with' if has else 'no'} success")
        for p in report.coverage_map:
            ax.annotate(p.name, (p.x, p.y), fontsize=6, color="#57606a", xytext=(3, 2),
                        textcoords="offset points")
        ax.set_xlabel("meta-features, first principal component")
        ax.set_ylabel("second principal component")
        ax.legend(fontsize=7)
        out.append(_figure(fig, "The KB's datasets placed by their meta-features (scaled as the "
                                "recommender scales them). Hollow: no known success."))
    coverage = next(c for c in report.checks if c.name == "coverage")
    counts = coverage.data.get("regions", {})
    regions = all_regions(sorted(TASK_COLOURS))
    grid = {}
    for name in regions:
        task, rows, features = name.split(", ")
        grid.setdefault((task, rows), {})[features] = counts.get(name, 0)
    feature_bins = list(dict.fromkeys(r.split(", ")[2] for r in regions))
    rows = [(task, row_bin, *(grid[(task, row_bin)][f] for f in feature_bins))
            for (task, row_bin) in grid]
    out.append(f"<p>Known successes per region (task, rows in decades {ROW_EDGES}, features in "
               f"{FEATURE_EDGES}); a 0 is a region the baseline says nothing about.</p>")
    out.append(_table(["task", "rows", *feature_bins], rows, [False, False] + [True] * len(feature_bins)))
    return "\n".join(out)


def _findings(report: AuditReport) -> str:
    out = []
    for check in report.checks:
        if not check.findings:
            continue
        rows = [(_status(f.severity), f.subject, f.problem) for f in check.findings]
        out.append(f"<details{' open' if check.status == FAIL else ''}><summary>{check.name}: "
                   f"{len(rows)} finding(s)</summary>{_table(['severity', 'subject', 'problem'], rows)}</details>")
    return "\n".join(out) or "<p>None.</p>"


def _successes_table(report: AuditReport) -> str:
    rows = []
    for s in report.successes:
        j = success_json(s)
        config = {k: v for k, v in j["config"].items() if k != "family"}
        rows.append((j["success"], j["model_family"], j["score"], j["score_std"], j["runner_up"],
                     j["latency_p50_ms"], j["peak_memory_mb"], j["source"],
                     json.dumps(config, separators=(",", ":"))))
    return _table(["dataset / metric / hardware", "family", "score", "CV spread", "runner-up",
                   "p50 ms", "memory MB", "source", "configuration"], rows,
                  [False, False, True, True, True, True, True, False, False])
