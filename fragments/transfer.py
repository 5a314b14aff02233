"""Hardware transfer: a new device's latency for every architecture from a few measured ones,
drawing on the devices the KB already knows (pure computation: arrays in, arrays out).

The model is Bayesian linear regression in an architecture encoding (``nb201_encoding``: the
operation on each of a cell's six edges; ``fragment_count_encoding``: how often each fragment
occurs), with a prior *learned from the known devices* (meta-learning, as HELP does, but in
closed form):

1. every known device ``j`` gets its coefficients ``theta_j`` by ridge regression of its
   latencies on the encoding, divided by its mean predicted latency, so devices of any speed
   share one scale-free "shape" of latency;
2. the prior over a new device's shape is Gaussian with the known devices' mean and
   covariance (plus ``spread`` times the identity, for directions no known device took);
3. the new device's few samples give its speed (``scale``) and the posterior mean of its
   shape: ``latency(arch) = scale * encoding(arch) . theta``.

Two hyperparameters (the extra spread and the noise, both relative to the mean latency) are
chosen per new device by the marginal likelihood of its own samples (empirical Bayes), so
nothing about the new device but its samples is used, and a device unlike the known ones
leans on its samples more. Latencies are additive in operations to first order, which is
why the regression is on latency, not its logarithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kb.errors import KBError

# Candidates for the two hyperparameters (variances, relative to the mean latency squared).
SPREADS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
NOISES = (1e-3, 3e-3, 1e-2, 3e-2)
RIDGE = 1e-3  # fitting a known device on all its architectures: barely regularised
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Prior:
    """What the known devices say a device's latency looks like, per encoding feature."""

    devices: tuple[str, ...]
    mean: np.ndarray  # (features,): the average scale-free coefficients
    deviations: np.ndarray  # (features, devices): each device's coefficients minus the mean
    feature_names: tuple[str, ...]

    @property
    def n_devices(self) -> int:
        return len(self.devices)


@dataclass(frozen=True)
class DeviceModel:
    """A device's fitted latency model: ``latency = scale * features . coefficients``."""

    coefficients: np.ndarray  # (features,), scale-free
    scale: float  # ms (or the samples' unit) per unit of scale-free latency
    spread: float
    noise: float
    n_samples: int
    feature_names: tuple[str, ...]

    def predict(self, features: np.ndarray) -> np.ndarray:
        # A linear fit can dip below zero for the emptiest cells; no latency does.
        return np.maximum(self.scale * (np.asarray(features, float) @ self.coefficients), 0.0)


# -- encodings ------------------------------------------------------------------------------


def nb201_encoding(cells: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """One-hot operation per edge of each NAS-Bench-201 cell string, plus an intercept."""
    from fragments.nb201 import EDGES, OPS, parse_nb201

    names = tuple(f"{op}@{to}<-{frm}" for to, frm in EDGES for op in OPS) + ("intercept",)
    out = np.zeros((len(cells), len(names)))
    out[:, -1] = 1.0
    for row, cell in enumerate(cells):
        for position, (_, _, op) in enumerate(parse_nb201(cell)):
            out[row, position * len(OPS) + OPS.index(op)] = 1.0
    return out, names


def fragment_count_encoding(fragment_lists: Sequence[Sequence[str]], vocabulary: Sequence[str] | None = None
                            ) -> tuple[np.ndarray, tuple[str, ...]]:
    """How often each fragment id occurs in each architecture, plus an intercept. With a
    ``vocabulary`` (fragment ids), an architecture holding any other fragment is all NaN."""
    names = sorted({f for fragments in fragment_lists for f in fragments}) if vocabulary is None \
        else list(vocabulary)
    column = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(fragment_lists), len(names) + 1))
    out[:, -1] = 1.0
    for row, fragments in enumerate(fragment_lists):
        for fragment in fragments:
            if fragment not in column:
                out[row] = np.nan
                break
            out[row, column[fragment]] += 1.0
    return out, (*names, "intercept")


# -- learning from known devices ---------------------------------------------------------------


def learn_prior(features: np.ndarray, latencies: np.ndarray, devices: Sequence[str],
                feature_names: Sequence[str]) -> Prior:
    """The prior from known devices: ``latencies`` is (architectures, devices), NaN where a
    device has no measurement of an architecture."""
    features = np.asarray(features, float)
    latencies = np.asarray(latencies, float)
    if latencies.ndim != 2 or latencies.shape != (features.shape[0], len(devices)):
        raise ValueError("latencies must be (architectures, devices), features (architectures, f)")
    if len(devices) < 2:
        raise KBError(f"hardware transfer needs at least 2 known devices with latencies of "
                      f"these architectures; the KB has {len(devices)}")
    coefficients = np.empty((features.shape[1], len(devices)))
    for j in range(len(devices)):
        seen = np.isfinite(latencies[:, j])
        if seen.sum() < features.shape[1]:
            raise KBError(f"device {devices[j]!r} has latencies of {int(seen.sum())} "
                          f"architectures, fewer than the {features.shape[1]} the encoding needs")
        theta = _ridge(features[seen], latencies[seen, j], RIDGE)
        coefficients[:, j] = theta / np.mean(features @ theta)
    return _prior_from(tuple(devices), coefficients, tuple(feature_names))


def _prior_from(devices: tuple[str, ...], coefficients: np.ndarray,
                feature_names: tuple[str, ...]) -> Prior:
    mean = coefficients.mean(axis=1)
    return Prior(devices, mean, coefficients - mean[:, None], feature_names)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y)


# -- fitting a new device ----------------------------------------------------------------------


def fit_device(prior: Prior, sample_features: np.ndarray, sample_latencies: np.ndarray, *,
               spread: float | None = None, noise: float | None = None) -> DeviceModel:
    """The new device's model from its samples (encodings of the measured architectures and
    their latencies); hyperparameters not given are chosen by ``choose_hyperparameters``."""
    x = np.asarray(sample_features, float)
    y = np.asarray(sample_latencies, float)
    if len(y) < MIN_SAMPLES:
        raise KBError(f"a device needs at least {MIN_SAMPLES} measured architectures, not {len(y)}")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise KBError("sample latencies must be positive numbers")
    if spread is None or noise is None:
        chosen = choose_hyperparameters(prior, x, y)
        spread = chosen[0] if spread is None else spread
        noise = chosen[1] if noise is None else noise
    coefficients, scale = _posterior(prior, x, y, spread, noise)
    return DeviceModel(coefficients, scale, spread, noise, len(y), prior.feature_names)


def _posterior(prior: Prior, x: np.ndarray, y: np.ndarray, spread: float,
               noise: float) -> tuple[np.ndarray, float]:
    """Posterior mean of the scale-free coefficients and the scale, alternating the two
    (the scale is a least-squares fit of the samples to the current shape)."""
    m = max(prior.n_devices - 1, 1)
    projected = x @ prior.deviations  # (k, devices)
    # Prior covariance of the samples' scale-free latencies, and of the coefficients with them.
    kernel = projected @ projected.T / m + spread * (x @ x.T)
    solve = np.linalg.inv(kernel + noise * np.eye(len(y)))
    prior_at_samples = x @ prior.mean
    scale = float(np.mean(y) / np.mean(prior_at_samples))
    for _ in range(3):
        alpha = solve @ (y / scale - prior_at_samples)
        coefficients = prior.mean + prior.deviations @ (projected.T @ alpha) / m + spread * (x.T @ alpha)
        shape = x @ coefficients
        scale = float(shape @ y / (shape @ shape))
    return coefficients, scale


def choose_hyperparameters(prior: Prior, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(spread, noise) under which the samples are most likely (type-II maximum likelihood:
    the Gaussian marginal likelihood of the scale-free samples, at the fitted scale). A
    device unlike the known ones gets a wide spread, so its samples count for more."""
    best, best_evidence = (SPREADS[0], NOISES[0]), -np.inf
    m = max(prior.n_devices - 1, 1)
    projected = x @ prior.deviations
    for spread in SPREADS:
        for noise in NOISES:
            covariance = projected @ projected.T / m + spread * (x @ x.T) + noise * np.eye(len(y))
            _, scale = _posterior(prior, x, y, spread, noise)
            residual = y / scale - x @ prior.mean
            _, log_det = np.linalg.slogdet(covariance)
            evidence = -0.5 * (residual @ np.linalg.solve(covariance, residual) + log_det)
            if evidence > best_evidence:
                best, best_evidence = (spread, noise), evidence
    return best
