"""The recommender: known-good configurations for a dataset, on a hardware profile, under
limits, from the outcomes the KB holds.

- ``ranking``: the arithmetic (normalized outcomes, learned distance, weighted greedy portfolio).
- ``evidence``: the KB queries it needs.
- ``recommender``: ``recommend`` and ``portfolio``, returning ``Recommendation``s.
"""

from kb.recommend.recommender import Recommendation, portfolio, recommend

__all__ = ["Recommendation", "portfolio", "recommend"]
