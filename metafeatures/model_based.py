"""Model-based meta-features: the shape of a fully grown decision tree.

The tree is scikit-learn's ``DecisionTreeClassifier(random_state=seed)`` on the design matrix,
the tree pymfe 0.4.4 describes, and every feature is pymfe's definition of the same name
(leaves per class counts the classes some leaf predicts; depths count edges from the root).
Classification only.
"""

from __future__ import annotations

import numpy as np

from metafeatures.collector import Collector
from metafeatures.context import Context
from metafeatures.summaries import SHORT_SUMMARIES

def model_based(ctx: Context) -> Collector:
    out = Collector()
    sample = ctx.class_sample("model-based", out)
    if sample is None:
        return out
    X, y = sample.design, sample.y
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(random_state=ctx.seed).fit(X, y).tree_
    describe_tree(tree, X.shape[1], out)
    out.sampled(ctx.sample_size, list(out.values))
    return out


def describe_tree(tree, n_features: int, out: Collector) -> None:
    leaf = tree.feature < 0
    internal = ~leaf
    depth = _depths(tree.children_left, tree.children_right)
    n_leaves, n_nodes = int(leaf.sum()), int(internal.sum())
    out.put("TreeNumberOfLeaves", n_leaves)
    out.put("TreeNumberOfNodes", n_nodes)
    out.put("TreeNodesPerAttribute", n_nodes / n_features)
    out.put("TreeNodesPerInstance", n_nodes / tree.n_node_samples[0])
    out.put("TreeDepth", depth.max())
    out.summary("TreeNodeDepth", depth, SHORT_SUMMARIES)
    out.summary("TreeLeafDepth", depth[leaf], SHORT_SUMMARIES)
    out.summary("TreeLeafCorroboration", tree.n_node_samples[leaf] / tree.n_node_samples[0], SHORT_SUMMARIES)
    predicted = np.argmax(tree.value[leaf][:, 0, :], axis=1)
    out.summary("TreeLeavesPerClass", np.unique(predicted, return_counts=True)[1] / n_leaves, SHORT_SUMMARIES)
    arrival = np.power(2.0, -depth[leaf])
    shape = -arrival * np.log2(arrival)
    out.summary("TreeShape", shape, SHORT_SUMMARIES)
    with np.errstate(divide="ignore"):
        out.summary("TreeLeafHomogeneity", n_leaves / shape, SHORT_SUMMARIES)
    if n_nodes:
        out.summary("TreeNodesPerLevel", np.unique(depth[internal], return_counts=True)[1], SHORT_SUMMARIES)
        out.summary("TreeAttributeRepetition", np.unique(tree.feature[internal], return_counts=True)[1],
                    SHORT_SUMMARIES)
    values, counts = np.unique(arrival, return_counts=True)
    imbalance = np.power(2.0, -(values * counts))
    out.summary("TreeImbalance", -imbalance * np.log2(imbalance), SHORT_SUMMARIES)
    importances = tree.compute_feature_importances()
    out.summary("TreeFeatureImportance", importances, ("Stdv", "Max"))


def _depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Edges from the root to every node, by pointer jumping up the parent links."""
    parent = np.full(left.size, -1)
    internal = left >= 0
    parent[left[internal]] = np.flatnonzero(internal)
    parent[right[internal]] = np.flatnonzero(internal)
    depth = np.zeros(left.size, dtype=np.int64)
    up = parent.copy()
    while (up >= 0).any():
        moving = up >= 0
        depth += moving
        up[moving] = parent[up[moving]]
    return depth
