"""1-nearest-neighbour predictions for every fold of a cross-validation at once, exactly.

Distances are Euclidean on the raw design matrix, as pymfe's ``KNeighborsClassifier(1)``
computes them. Each row is predicted from the nearest rows outside its own fold; when several
training rows are exactly equally near, the prediction is the most common class among them
(then the lowest class). scikit-learn instead takes whichever its k-d tree meets first, so on
such ties the two can disagree, and only there.

Identical rows are merged first and carry their class counts per fold: tables with many
duplicate rows (network logs, survey answers) would otherwise make every duplicate a tie with
every other, and a query row shares its answer with all its copies in the same fold. What is
left is, for each distinct query row, a search of its nearest distinct rows among those with a
copy outside its fold, by one of two exact methods chosen by timing both on a few rows (the
faster one depends on the data's intrinsic dimension, not its column count):

- one k-d tree (scipy) over all distinct rows, asked for each query's few nearest rows, of
  which those with a copy outside the query's fold count (and every row within the nearest
  distance when those few are all tied); a query whose few are all unusable goes to:
- brute force per fold: a float32 matrix product finds candidates under a proven rounding
  bound and their distances are recomputed in float64 (rows whose bound admits too many
  candidates are redone with a float64 product); fast in high dimension.
"""

from __future__ import annotations

import time

import numpy as np

_NEIGHBOURS = 8  # asked of the k-d tree; when all of them tie, a radius query follows
_PROBE_ROWS = 128
_NOT_WORTH_A_TREE = 0.02  # seconds of brute force a tree could not save much of
_CHUNK_CELLS = 2_000_000  # query rows x candidate rows per block of brute-force distances
_MAX_CANDIDATES = 256  # more candidates than this under the float32 bound: redo in float64
_RELATIVE_TIE = 1e-9  # k-d tree distances this close to the nearest are rechecked exactly


def one_nn(X: np.ndarray, y: np.ndarray, fold: np.ndarray, n_classes: int) -> np.ndarray:
    """For every row, the class predicted from the nearest rows of the other folds.

    Matrix products use the BLAS threads the caller allows (``compute`` allows one)."""
    n_folds = int(fold.max()) + 1 if fold.size else 0
    # + 0.0 turns -0.0 into 0.0, which np.unique (comparing bytes) would otherwise keep apart.
    distinct, row_to_distinct = np.unique(X + 0.0, axis=0, return_inverse=True)
    row_to_distinct = row_to_distinct.reshape(-1)
    n_distinct = distinct.shape[0]
    # copies[d, f, c]: rows equal to distinct row d, in fold f, of class c.
    copies = np.bincount((row_to_distinct * n_folds + fold) * n_classes + y,
                         minlength=n_distinct * n_folds * n_classes).reshape(n_distinct, n_folds, n_classes)
    outside = copies.sum(axis=1, keepdims=True) - copies  # copies outside each fold, by class
    # Rows equal to each other and in the same fold get the same answer: one query for them.
    keys, row_to_key = np.unique(row_to_distinct * n_folds + fold, return_inverse=True)
    key_row, key_fold = keys // n_folds, keys % n_folds
    votes = outside[key_row, key_fold].astype(np.float64)  # a copy elsewhere is at distance 0
    search = np.flatnonzero(votes.sum(axis=1) == 0)
    tree = _tree_if_faster(distinct, outside, key_row, key_fold, search)
    if tree is not None:
        search = _from_one_tree(tree, distinct, outside, key_row, key_fold, search, votes)
    for f in np.unique(key_fold[search]):
        queries = search[key_fold[search] == f]
        available = np.flatnonzero(outside[:, f, :].any(axis=1))
        if available.size:
            finder = _Finder(distinct[available], outside[available, f, :])
            votes[queries] = finder.votes(distinct[key_row[queries]])
    return np.argmax(votes, axis=1)[row_to_key.reshape(-1)]


def _tree_if_faster(distinct, outside, key_row, key_fold, search):
    """A k-d tree over the distinct rows if it answers the ``search`` keys sooner than brute
    force, else None. Both are timed on the same probe of keys, ties included, in this
    thread's CPU time (which other processes' load does not distort as it does wall-clock
    time). Which is faster depends on the data's intrinsic dimension, not its column count."""
    n = search.size
    if n <= _PROBE_ROWS or distinct.shape[1] > 64:
        return None
    from scipy.spatial import cKDTree

    f = key_fold[search[0]]
    in_fold = search[key_fold[search] == f]
    # Spread over the fold: keys are in the sorted order of their rows, so the first ones are
    # the rows that begin with the smallest values, not a fair sample.
    probe = in_fold[np.unique(np.linspace(0, in_fold.size - 1, _PROBE_ROWS).astype(np.int64))]
    available = np.flatnonzero(outside[:, f, :].any(axis=1))
    start = time.thread_time()
    _Finder(distinct[available], outside[available, f, :]).votes(distinct[key_row[probe]])
    brute_seconds = (time.thread_time() - start) * n / probe.size
    if brute_seconds < _NOT_WORTH_A_TREE:
        return None
    start = time.thread_time()
    tree = cKDTree(distinct)
    built = time.thread_time()
    scratch = np.zeros((key_row.size, outside.shape[2]))
    _from_one_tree(tree, distinct, outside, key_row, key_fold, probe, scratch)
    tree_seconds = (built - start) + (time.thread_time() - built) * n / probe.size
    return tree if tree_seconds < brute_seconds else None


def _from_one_tree(tree, distinct, outside, key_row, key_fold, search, votes) -> np.ndarray:
    """Fill ``votes`` of the ``search`` keys from a k-d tree over every distinct row, keeping
    the neighbours with a copy outside the query's fold; return the keys it cannot settle."""
    available = outside.any(axis=2)  # [distinct row, fold]
    k = min(_NEIGHBOURS, distinct.shape[0])
    points, folds = distinct[key_row[search]], key_fold[search]
    distance, index = tree.query(points, k=k)
    distance, index = distance.reshape(-1, k), index.reshape(-1, k)
    usable = available[index, folds[:, None]]
    found = usable.any(axis=1)
    nearest = distance[np.arange(search.size), np.argmax(usable, axis=1)]
    radius = nearest * (1 + _RELATIVE_TIE) + 1e-300
    close = usable & (distance <= radius[:, None])
    # If the last neighbour is still this close, more tied rows may lie beyond it: those keys
    # ask the tree for everything within that radius instead.
    settled = found & ~close[:, -1]
    owner, column = np.nonzero(close & settled[:, None])
    candidate = index[owner, column]
    tied = np.flatnonzero(found & ~settled)
    if tied.size:
        balls = tree.query_ball_point(points[tied], radius[tied], return_sorted=False)
        sizes = np.fromiter((len(b) for b in balls), dtype=np.int64, count=tied.size)
        ball_owner = np.repeat(tied, sizes)
        ball_row = np.fromiter((i for b in balls for i in b), dtype=np.int64, count=int(sizes.sum()))
        keep = available[ball_row, folds[ball_owner]]
        owner = np.concatenate([owner, ball_owner[keep]])
        candidate = np.concatenate([candidate, ball_row[keep]])
    votes[search] += _tally(points, distinct, owner, candidate,
                            outside[candidate, folds[owner], :], search.size)
    return search[~found]


class _Finder:
    """Brute force: the class votes of each query's exactly nearest candidates."""

    def __init__(self, candidates: np.ndarray, weights: np.ndarray):
        self.C, self.weights = candidates, weights
        self.centre = candidates.mean(axis=0)
        # Centring leaves distances unchanged and shrinks the norms the rounding bound scales
        # with; a power-of-two scale (exact) keeps squares clear of float32's range limits.
        spread = float(np.max(np.abs(candidates - self.centre))) if candidates.size else 0.0
        self.scale = 2.0 ** -np.floor(np.log2(spread)) if spread > 0 and np.isfinite(spread) else 1.0
        A = (candidates - self.centre) * self.scale
        norms = np.einsum("ij,ij->i", A, A)
        # One product gives |a|^2 - 2 q.a: append |a|^2 to each row and 1 to each query.
        self.A64 = np.hstack([A, norms[:, None]])
        self.A32 = self.A64.astype(np.float32)
        self.largest = float(norms.max()) if norms.size else 0.0

    def votes(self, queries: np.ndarray) -> np.ndarray:
        owner, candidate = self._brute(queries)
        return _tally(queries, self.C, owner, candidate, self.weights[candidate], queries.shape[0])

    def _brute(self, queries: np.ndarray):
        owners, candidates = [], []
        step = max(1, _CHUNK_CELLS // max(1, self.A32.shape[0]))
        for start in range(0, queries.shape[0], step):
            owner, candidate = self._chunk(queries[start:start + step])
            owners.append(owner + start)
            candidates.append(candidate)
        if not owners:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(owners), np.concatenate(candidates)

    def _chunk(self, queries: np.ndarray):
        Q = (queries - self.centre) * self.scale
        q_norms = np.einsum("ij,ij->i", Q, Q)
        Q = np.hstack([-2.0 * Q, np.ones((Q.shape[0], 1))])
        p = self.A64.shape[1]
        d = Q.astype(np.float32) @ self.A32.T
        # |fl(d) - d| < (p + 5) u32 (|q|^2 + max|a|^2) for any summation order: the float32
        # dot product and the rounding of its inputs. Anything within twice that of the
        # smallest value may be the nearest; 2x more covers the comparisons' own rounding.
        bound = 4.0 * (p + 5) * float(np.finfo(np.float32).eps) * (q_norms + self.largest)
        owner, candidate, heavy = _candidates(d, bound, _MAX_CANDIDATES)
        if heavy.size:
            d64 = Q[heavy] @ self.A64.T
            bound64 = 4.0 * (p + 5) * float(np.finfo(np.float64).eps) * (q_norms[heavy] + self.largest)
            extra_owner, extra_candidate, _ = _candidates(d64, bound64, None)
            owner = np.concatenate([owner, heavy[extra_owner]])
            candidate = np.concatenate([candidate, extra_candidate])
        return owner, candidate


def _candidates(d: np.ndarray, bound: np.ndarray, limit: int | None):
    """(owner, column) of every entry of ``d`` within twice ``bound`` of its row's smallest,
    and the rows with more than ``limit`` such entries (left out of the pairs)."""
    rows = np.arange(d.shape[0])
    best = np.argmin(d, axis=1)
    threshold = (d[rows, best] + 2.0 * bound).astype(d.dtype)
    # Most rows have one clear nearest: check the runner-up instead of scanning for more.
    d[rows, best] = np.inf
    crowded = np.flatnonzero(d.min(axis=1) <= threshold)
    d[rows, best] = -np.inf  # keep the best as a candidate of crowded rows below
    near = d[crowded] <= threshold[crowded, None]
    counts = np.count_nonzero(near, axis=1)
    too_many = counts > limit if limit is not None else np.zeros(counts.size, dtype=bool)
    near[too_many] = False
    crowded_owner, candidate = np.nonzero(near)
    clear = np.setdiff1d(rows, crowded, assume_unique=True)
    return (np.concatenate([clear, crowded[crowded_owner]]),
            np.concatenate([best[clear], candidate]), crowded[too_many])


def _tally(queries, points, owner, candidate, weights, n_queries) -> np.ndarray:
    """Per query, the summed ``weights`` (class counts) of its exactly nearest candidates,
    among the (owner, candidate) pairs, which include every exactly nearest one."""
    diff = queries[owner] - points[candidate]
    distance = np.einsum("ij,ij->i", diff, diff)
    nearest = np.full(n_queries, np.inf)
    np.minimum.at(nearest, owner, distance)
    tied = distance == nearest[owner]
    out = np.zeros((n_queries, weights.shape[1]))
    np.add.at(out, owner[tied], weights[tied])
    return out
