"""VisualRank (Jing & Baluja 2008) on one group of images, in numpy and scipy.

An image that many similar images resemble is canonical: VisualRank is PageRank on the graph whose
vertices are the images of a group and whose edge weights are their similarities,

    VR = d * S* VR + (1 - d) * p,    p uniform,

where S* is the similarity matrix normalised by column (each image hands out its score in
proportion to its similarity to the others) and d the damping factor (0.85). The result is a
stationary distribution: nonnegative and summing to 1.

Similarity is the cosine of the images' vectors (for instance ``similarity.global_vector``, or any
L2-normalised embedding), clipped at 0. ``dense_visualrank`` uses every pair (n x n memory);
``visualrank`` keeps each image's k most similar others (``knn_graph``, O(block x n) memory) and
runs the sparse ``weighted_pagerank``, as the paper does at scale. With k >= n - 1 the two agree.
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 20
BLOCK_CELLS = 1 << 24            # knn_graph: cosines held at once (128 MiB of float64) unless told a block


def _as_vectors(vectors, keep_float32: bool = False) -> np.ndarray:
    array = np.asarray(vectors)
    array = array.astype(np.float32 if keep_float32 and array.dtype == np.float32 else np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(f"expected an (n, dims) array of vectors, got shape {array.shape}")
    return array


def knn_graph(vectors: np.ndarray, k: int, block: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, weight): for each image its k most similar others by cosine (the dot product of
    L2-normalised vectors), weight = cosine clipped at 0.

    Zero-weight edges are dropped and there are no self-loops, so an image may have fewer than k
    out-edges. Rows are taken ``block`` at a time (by default as many as keep block x n within
    ``BLOCK_CELLS``, at least one): memory is O(block x n), never n x n. Edges come
    in order of src, then of decreasing weight (ties in increasing dst); src and dst are int64,
    weight float64. float32 vectors are multiplied in float32 (twice as fast), others in float64.
    """
    data = _as_vectors(vectors, keep_float32=True)
    n = len(data)
    k = min(int(k), n - 1)
    if n < 2 or k < 1:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    block = max(1, int(block) if block else BLOCK_CELLS // n)
    sources, targets, weights = [], [], []
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        cosine = data[rows] @ data.T
        cosine[np.arange(len(rows)), rows] = -np.inf                       # no self-loops
        if k < n - 1:
            # the k largest per row (an unordered partition), then ordered below
            top = np.argpartition(-cosine, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n), (len(rows), n))
        chosen = np.take_along_axis(cosine, top, axis=1)
        order = np.lexsort((top, -chosen), axis=1)                          # by weight desc, then dst asc
        top = np.take_along_axis(top, order, axis=1)
        chosen = np.take_along_axis(chosen, order, axis=1)
        keep = chosen > 0                                                   # drops self (-inf) and weight <= 0
        sources.append(np.broadcast_to(rows[:, None], top.shape)[keep])
        targets.append(top[keep])
        weights.append(chosen[keep])
    return (np.concatenate(sources).astype(np.int64), np.concatenate(targets).astype(np.int64),
            np.concatenate(weights).astype(np.float64))


def _power_iteration(transition, dangling: np.ndarray, damping: float, tol: float, max_iter: int) -> np.ndarray:
    """The stationary distribution of a column-stochastic ``transition`` (sparse or dense) with
    uniform teleport, dangling columns spreading uniformly; stops when the L1 change < ``tol``."""
    n = len(dangling)
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = rank
        rank = damping * (transition @ previous + previous[dangling].sum() / n) + (1.0 - damping) / n
        rank /= rank.sum()
        if np.abs(rank - previous).sum() < tol:
            break
    return rank


def weighted_pagerank(n: int, src, dst, weight, damping: float = 0.85, tol: float = 1e-10,
                      max_iter: int = 1000) -> np.ndarray:
    """PageRank of a weighted directed graph on vertices 0..n-1, a distribution (sums to 1).

    Each source hands out its score in proportion to its out-edge weights (parallel edges add up;
    nonpositive weights are ignored); a vertex without out-weight (dangling) spreads its score
    uniformly; the teleport is uniform. Power iteration with a scipy.sparse matrix, stopping when
    the L1 change falls below ``tol`` (or after ``max_iter`` steps). The same definition as
    ``networkx.pagerank(G, alpha=damping, weight="weight")``.
    """
    from scipy import sparse

    if n == 0:
        return np.empty(0, np.float64)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if not (len(src) == len(dst) == len(weight)):
        raise ValueError("src, dst and weight must have the same length")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must lie in 0..{n - 1}")
    positive = weight > 0
    src, dst, weight = src[positive], dst[positive], weight[positive]
    out_weight = np.bincount(src, weights=weight, minlength=n)
    dangling = out_weight == 0
    # column-stochastic transition matrix: M[j, i] = w(i -> j) / out_weight(i)
    transition = sparse.csr_matrix((weight / out_weight[src], (dst, src)), shape=(n, n))
    return _power_iteration(transition, dangling, damping, tol, max_iter)


def dense_visualrank(vectors, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """The brute-force baseline: the full n x n cosine matrix (diagonal zeroed, negatives clipped),
    normalised by column, power iteration. An image similar to none spreads its score uniformly."""
    data = _as_vectors(vectors)
    n = len(data)
    if n == 0:
        return np.empty(0, np.float64)
    similarity = np.clip(data @ data.T, 0.0, None)
    np.fill_diagonal(similarity, 0.0)
    column = similarity.sum(axis=0)
    dangling = column == 0
    transition = np.divide(similarity, column, out=np.zeros_like(similarity), where=~dangling)
    return _power_iteration(transition, dangling, damping, tol, max_iter)


def visualrank(vectors, k: int = DEFAULT_K, damping: float = 0.85) -> tuple[np.ndarray, np.ndarray]:
    """(scores, neighbours): VisualRank on the k-nearest-neighbour graph of the vectors, and each
    image's number of out-neighbours kept (at most k; fewer when similarities are not positive)."""
    data = _as_vectors(vectors)
    n = len(data)
    src, dst, weight = knn_graph(data, k)
    return weighted_pagerank(n, src, dst, weight, damping=damping), np.bincount(src, minlength=n).astype(np.int64)


def implicit_visualrank(vectors, src=None, dst=None, weight=None, damping: float = 0.85, tol: float = 1e-10,
                        max_iter: int = 1000) -> np.ndarray:
    """The dense VisualRank of nonnegative vectors without the n x n matrix, plus optional sparse
    extra similarity (src, dst, weight; added to the cosine of both directions' pairs as given).

    For vectors with no negative entry every cosine is >= 0, so clipping changes nothing and
    S = V V^T - diag(|v|^2) is exact: S x = V (V^T x) - |v|^2 x costs O(n * dims), not O(n^2), per
    iteration, and the column sums are V (V^T 1) - |v|^2. The result equals :func:`dense_visualrank`
    (with the extra weights, the dense matrix S + M). Vectors with a negative entry are refused: their
    clipped cosines have no such factorisation (use :func:`visualrank`'s k-nearest graph).
    """
    from scipy import sparse

    data = _as_vectors(vectors)
    n = len(data)
    if n == 0:
        return np.empty(0, np.float64)
    if (data < 0).any():
        raise ValueError("implicit_visualrank needs nonnegative vectors (their cosines are never negative)")
    norms = np.einsum("ij,ij->i", data, data)
    extra = None
    if src is not None and len(src):
        extra = sparse.csr_matrix((np.asarray(weight, np.float64), (np.asarray(dst), np.asarray(src))),
                                  shape=(n, n))   # extra[j, i]: similarity i -> j, column i is image i's
    column = data @ data.sum(axis=0) - norms + (np.asarray(extra.sum(axis=0)).ravel() if extra is not None else 0)
    dangling = column <= 1e-15
    scale = np.divide(1.0, column, out=np.zeros(n), where=~dangling)

    def step(x: np.ndarray) -> np.ndarray:
        y = x * scale
        out = data @ (data.T @ y) - norms * y
        return out + extra @ y if extra is not None else out

    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = rank
        rank = damping * (step(previous) + previous[dangling].sum() / n) + (1.0 - damping) / n
        rank /= rank.sum()
        if np.abs(rank - previous).sum() < tol:
            break
    return rank
