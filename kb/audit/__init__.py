"""``kb audit``: is each known success complete, reproducible and current, where does the
KB know nothing, and does starting from it beat starting cold?

- ``successes``: which trials are the known successes (a query);
- ``verdict``: what a check ends in (status, findings, numbers);
- the checks, pure functions of records and measurements: ``provenance`` (complete,
  current), ``reproducibility``, ``coverage``, ``value``;
- ``replay``: leave-one-dataset-out replays of the recommender and its anchors, read from
  the KB, for ``value`` and the report;
- ``audit``: reads what the checks need from the KB and runs them;
- ``report``: the audit as one self-contained HTML page.

Re-running successes trains models, so it lives in ``search.reproduce``.
"""
