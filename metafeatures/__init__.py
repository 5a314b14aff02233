"""Dataset meta-features: pure functions from ``X, y, task`` to ``{name: value}``.

>>> from metafeatures import extract                                    # doctest: +SKIP
>>> extract(X, y, "multiclass", groups=["general", "statistical"])       # doctest: +SKIP
{'NumberOfInstances': 150.0, 'NumberOfFeatures': 5.0, ...}

``compute`` returns an ``Extraction`` with the values and what else a caller may record (the
rows a sampled feature used, notes on absent features, timings). Names follow OpenML's quality
names where OpenML has one; ``to_metakb`` converts names of OpenML, auto-sklearn and pymfe;
``similarity`` ranks datasets by distance. Nothing here reads or writes files or the KB.
See README.md in this folder for the definitions and the pymfe parity table.
"""

from metafeatures.context import DEFAULT_MAX_ROWS
from metafeatures.errors import MetaFeatureError
from metafeatures.extract import (
    EXTRACTOR, EXTRACTOR_VERSION, Extraction, compute, extract, parse_groups,
)
from metafeatures.names import (
    ALIASES, FEATURE_NAMES, FEATURES, GROUPS, Alias, Converted, Feature, detect_source, group_of,
    to_metakb,
)

__all__ = [
    "ALIASES", "DEFAULT_MAX_ROWS", "EXTRACTOR", "EXTRACTOR_VERSION", "FEATURES", "FEATURE_NAMES",
    "GROUPS", "Alias", "Converted", "Extraction", "Feature", "MetaFeatureError", "compute",
    "detect_source", "extract", "group_of", "parse_groups", "to_metakb",
]
