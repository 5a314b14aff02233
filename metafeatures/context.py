"""What every group is given: the dataset, the seed, and the row sample for costly features."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from metafeatures.table import Prepared, sample_rows

DEFAULT_MAX_ROWS = 10_000
# Pairwise statistics (correlations, PCA) cost O(p^2); beyond this many numeric columns they
# are computed on a seeded sample of columns, as pymfe samples 12 for its attribute concentration.
MAX_PAIRWISE_COLUMNS = 1_000


@dataclass
class Context:
    data: Prepared
    seed: int = 0
    max_rows: int | None = DEFAULT_MAX_ROWS

    @cached_property
    def sample_index(self) -> np.ndarray | None:
        return sample_rows(self.data.n_rows, self.max_rows, self.seed)

    @cached_property
    def sample(self) -> Prepared:
        """The rows the costly features use: all of them, or a seeded sample of ``max_rows``."""
        return self.data if self.sample_index is None else self.data.take(self.sample_index)

    @property
    def sample_size(self) -> int | None:
        """Rows in the sample when it is one (None when the costly features see every row)."""
        return None if self.sample_index is None else int(self.sample_index.size)

    def class_sample(self, group: str, out) -> Prepared | None:
        """The row sample for a costly class-based group, or None, with a note saying why, when
        the group cannot run (a regression target, no feature column)."""
        if not self.data.is_classification:
            out.note(f"{group}: the target is not a class, so these features do not exist")
            return None
        if self.sample.design.shape[1] == 0:
            out.note(f"{group}: needs a feature column")
            return None
        return self.sample

    def rng(self, purpose: int) -> np.random.Generator:
        """A generator for one use of randomness, independent of the others for the same seed."""
        return np.random.default_rng([self.seed, purpose])
