"""The ``value`` check: does the recommender's first pick beat starting cold? Pure
arithmetic over held-out datasets (``kb.audit.replay`` produces them from the KB): regret,
wins and losses against each anchor, best-so-far curves."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import comb

from kb.audit.verdict import PASS, WARN, CheckResult, Finding, worst

SIGNIFICANCE = 0.05  # an anchor must beat the recommender this surely to fail it
MIN_DECIDED = 5  # the fewest wins + losses at which a sign test can reach SIGNIFICANCE
RECOMMENDER, PORTFOLIO, DEFAULT, RANDOM = ("recommender", "zero-shot portfolio",
                                           "family default", "random order")


@dataclass(frozen=True)
class Pick:
    """What one way of choosing a first configuration chose on a held-out dataset."""

    config_id: str | None
    score: float | None  # its score there; None where the KB never ran it there
    regret: float | None  # normalized: 0 = the dataset's best known, 1 = its worst


@dataclass(frozen=True)
class HeldOut:
    """One dataset left out of the KB: the first pick of the recommender and of the anchors."""

    dataset: str
    metric: str
    direction: str
    picks: Mapping[str, Pick]  # "recommender", "family default", "zero-shot portfolio"


def regret(score: float, scores: Sequence[float], direction: str) -> float:
    best, worst_ = (max(scores), min(scores)) if direction == "maximize" else (min(scores), max(scores))
    return 0.0 if best == worst_ else (best - score) / (best - worst_)


def beats(a: Pick, b: Pick, direction: str) -> int:
    """1 if ``a`` scored better than ``b``, 0 on a tie, -1 if worse."""
    if a.score == b.score:
        return 0
    return 1 if (a.score > b.score) == (direction == "maximize") else -1


def value_summary(held_out: Sequence[HeldOut], method: str = RECOMMENDER) -> dict:
    """Wins, ties and losses of ``method`` against each anchor and every method's regrets,
    over the held-out datasets where both were scored."""
    anchors = sorted({name for h in held_out for name in h.picks} - {method})
    out: dict = {"datasets": len(held_out), "regret": {}, "against": {}}
    for name in [method, *anchors]:
        values = sorted(h.picks[name].regret for h in held_out
                        if name in h.picks and h.picks[name].regret is not None)
        out["regret"][name] = {"n": len(values), "values": values,
                               "mean": sum(values) / len(values) if values else None,
                               "median": _quantile(values, 0.5), "p90": _quantile(values, 0.9)}
    for anchor in anchors:
        outcome, paired = Counter(), []
        for h in held_out:
            a, b = h.picks.get(method), h.picks.get(anchor)
            if a and b and a.score is not None and b.score is not None:
                outcome[("losses", "ties", "wins")[beats(a, b, h.direction) + 1]] += 1
                if a.regret is not None and b.regret is not None:
                    paired.append((a.regret, b.regret))
        out["against"][anchor] = {**{k: outcome[k] for k in ("wins", "ties", "losses")},
                                  # over the same datasets: an anchor scored on a few easy ones
                                  # must not look better than the recommender on all of them
                                  "paired_mean_regret": _paired_means(paired)}
    return out


def _paired_means(pairs: Sequence[tuple[float, float]]) -> dict | None:
    if not pairs:
        return None
    return {"n": len(pairs), "mine": sum(a for a, _ in pairs) / len(pairs),
            "theirs": sum(b for _, b in pairs) / len(pairs)}


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def check_value(held_out: Sequence[HeldOut], method: str = RECOMMENDER) -> CheckResult:
    """Leave-one-dataset-out: does the recommender's first pick beat starting cold? It fails
    when an anchor beats it on significantly more datasets than it loses on (one-sided sign
    test, ties left out, p < ``SIGNIFICANCE``), and warns when its mean regret is only
    higher than an anchor's: a difference the datasets cannot tell from chance."""
    from scipy.stats import binomtest

    if not held_out:
        return CheckResult("value", WARN, "no dataset has enough scored configurations shared "
                                          "with the rest of the KB to hold out and replay")
    summary = value_summary(held_out, method)
    mine = summary["regret"][method]["mean"]
    if mine is None:
        return CheckResult("value", WARN, "the recommender's picks were never run on the held-out "
                                          "datasets, so they cannot be scored", data=summary)
    findings = []
    for anchor, record in summary["against"].items():
        paired = record["paired_mean_regret"]
        decided = record["wins"] + record["losses"]
        p = binomtest(record["losses"], decided, 0.5, alternative="greater").pvalue if decided else 1.0
        record["p_worse"] = p
        if p < SIGNIFICANCE:
            findings.append(Finding(f"recommender vs {anchor}", f"loses on {record['losses']} "
                                    f"datasets and wins on {record['wins']} (sign test p = {p:.3f})"))
        elif paired is not None and paired["theirs"] < paired["mine"]:
            findings.append(Finding(f"recommender vs {anchor}", f"mean regret {paired['mine']:.3f} "
                                    f"is higher than {paired['theirs']:.3f} on the {paired['n']} "
                                    f"datasets both were scored on, though not significantly (wins/ties/losses "
                                    f"{record['wins']}/{record['ties']}/{record['losses']}, p = {p:.2f})",
                                    WARN))
    parts = [f"{a} {r['wins']}/{r['ties']}/{r['losses']}" for a, r in summary["against"].items()]
    means = ", ".join(f"{a} {summary['regret'][a]['mean']:.3f}" for a in summary["against"]
                      if summary["regret"][a]["mean"] is not None)
    text = (f"first pick over {len(held_out)} held-out datasets, wins/ties/losses vs "
            + ", ".join(parts) + f"; mean regret {mine:.3f} ({means})")
    if any(r["wins"] + r["losses"] < MIN_DECIDED for r in summary["against"].values()):
        # With 4 decided datasets or fewer, even 4 losses of 4 give p = 0.0625.
        text += f"; under {MIN_DECIDED} decided datasets the sign test cannot fail"
    status = worst([f.severity for f in findings]) if findings else PASS
    return CheckResult("value", status, text, tuple(findings), summary)


def expected_best_regret(regrets: Sequence[float]) -> list[float]:
    """E[best regret among the first t of a uniformly random order], t = 1..n. The i-th
    smallest of n values is the best of a random t-subset with probability
    C(n - i, t - 1) / C(n, t)."""
    ordered = sorted(regrets)
    n = len(ordered)
    return [sum(ordered[i - 1] * comb(n - i, t - 1) for i in range(1, n - t + 2)) / comb(n, t)
            for t in range(1, n + 1)]


def best_so_far(order: Sequence[str], regrets: Mapping[str, float]) -> list[float]:
    out, best = [], float("inf")
    for config_id in order:
        best = min(best, regrets[config_id])
        out.append(best)
    return out


def best_feasible_so_far(trials) -> list[float | None]:
    """The best feasible full-fidelity score after each of ``trials`` (None until there is
    one), in their order: a search's progress as its user saw it."""
    best, curve = None, []
    for t in trials:
        if t.status == "ok" and t.score is not None and t.fidelity == 1.0:
            better = best is None or (t.score > best if t.direction == "maximize" else t.score < best)
            best = t.score if better else best
        curve.append(best)
    return curve
