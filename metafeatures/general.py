"""General meta-features: counts, ratios, missing values and class balance.

OpenML's counts treat the target as one of the dataset's attributes (iris has
``NumberOfFeatures`` 5, of which 1 symbolic), and so do these, so that values computed here
and qualities downloaded from OpenML (TabRepo's task metadata, for one) can be compared.
Counts that OpenML does not define (``NumberOfFeaturesWithMissingValues``, the nominal to
numerical ratio) are over the feature columns only, as auto-sklearn and pymfe count them.
"""

from __future__ import annotations

import numpy as np

from metafeatures.collector import Collector
from metafeatures.context import Context
from metafeatures.table import Prepared


def general(ctx: Context) -> Collector:
    data = ctx.data
    out = Collector()
    n = data.n_rows
    p_num, p_cat = data.numeric.shape[1], data.categorical.shape[1]
    classification = data.is_classification
    attributes = p_num + p_cat + 1
    numeric_atts = p_num + (not classification)
    symbolic_atts = p_cat + classification
    binary_atts = int((data.levels == 2).sum()) + (data.task == "binary")
    out.put("NumberOfInstances", n)
    out.put("NumberOfFeatures", attributes)
    out.put("NumberOfNumericFeatures", numeric_atts)
    out.put("NumberOfSymbolicFeatures", symbolic_atts)
    out.put("NumberOfBinaryFeatures", binary_atts)
    out.put("PercentageOfNumericFeatures", 100.0 * numeric_atts / attributes)
    out.put("PercentageOfSymbolicFeatures", 100.0 * symbolic_atts / attributes)
    out.put("PercentageOfBinaryFeatures", 100.0 * binary_atts / attributes)
    out.put("Dimensionality", attributes / n)
    if p_num:
        out.put("RatioNominalToNumerical", p_cat / p_num)
    else:
        out.note("RatioNominalToNumerical: no numeric feature to divide by")
    _missing_values(data, out, attributes)
    if classification:
        _class_balance(data, out)
    distinct = np.concatenate([data.levels[data.levels > 0], [data.n_classes] if classification else []])
    if distinct.size:
        out.summary("NominalAttDistinctValues", distinct, ("Mean", "Stdv", "Min", "Max"))
    else:
        out.note("NominalAttDistinctValues summaries: the dataset has no nominal attribute")
    return out


def _missing_values(data: Prepared, out: Collector, attributes: int) -> None:
    n = data.n_rows
    missing = np.hstack([data.numeric_missing, data.categorical < 0])
    per_row = missing.sum(axis=1)
    per_column = missing.sum(axis=0)
    total = int(per_row.sum())
    out.put("NumberOfMissingValues", total)
    out.put("PercentageOfMissingValues", 100.0 * total / (attributes * n))
    out.put("NumberOfInstancesWithMissingValues", int((per_row > 0).sum()))
    out.put("PercentageOfInstancesWithMissingValues", 100.0 * (per_row > 0).sum() / n)
    out.put("NumberOfFeaturesWithMissingValues", int((per_column > 0).sum()))
    if missing.shape[1]:
        out.put("PercentageOfFeaturesWithMissingValues", 100.0 * (per_column > 0).sum() / missing.shape[1])


def _class_balance(data: Prepared, out: Collector) -> None:
    counts = data.class_counts[data.class_counts > 0]
    n = data.n_rows
    out.put("NumberOfClasses", counts.size)
    out.put("MajorityClassSize", counts.max())
    out.put("MinorityClassSize", counts.min())
    out.put("MajorityClassPercentage", 100.0 * counts.max() / n)
    out.put("MinorityClassPercentage", 100.0 * counts.min() / n)
    if counts.size >= 2:
        out.put("StdvClassPercentage", 100.0 * np.std(counts / n, ddof=1))

