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


# ------------------------------------------------------------------------------------------------------
# Candidates for large groups: random-hyperplane LSH with a bounded bucket size (the distributed path of
# visualrank.knn_edges runs these functions; lsh_knn runs the same steps in one process for tests and
# the benchmark).
#
# Each of ``tables`` hash tables draws ``bits`` random hyperplanes through the group's mean vector; an
# image's signature in a table is the side of each plane it lies on (bit 0 the most significant). The
# signatures form a binary tree (depth d: the first d bits), and each image's bucket in a table is its
# shallowest ancestor holding at most ``max_bucket`` images: a sparse region keeps a coarse bucket, a
# dense one is cut finer. ``bits`` = ceil(log2(n / max_bucket)) + ``extra_bits``, so a region may be
# 2^extra_bits times denser than average before running out of planes. A leaf still over the cap
# (near-identical vectors: no plane separates them) is split round-robin, in identifier order, into
# ceil(size / max_bucket) buckets: every bucket holds at most max_bucket images. Within each bucket
# every pair's cosine is computed exactly and each image keeps its k best; over the tables, the best k.
#
# The bound: an image is compared with at most tables x (max_bucket - 1) others, whatever n is (a
# pair colliding in several tables is counted once per table).
# ------------------------------------------------------------------------------------------------------
LSH_MAX_BITS = 62            # a signature is a nonnegative int64
LSH_CUT_BITS = 16            # the tree cut starts at depth bits - 16: a task per such node, 2^16 leaves at most
COSINE_DECIMALS = 12         # bucket_edges: equal vectors tie exactly


def lsh_bits(n: int, max_bucket: int, extra_bits: int) -> int:
    """Planes per table for a group of n images: ceil(log2(n / max_bucket)) (buckets of max_bucket
    at uniform density) plus ``extra_bits`` for denser regions, at most LSH_MAX_BITS."""
    base = int(np.ceil(np.log2(n / max_bucket))) if n > max_bucket else 0
    return int(min(LSH_MAX_BITS, base + max(0, int(extra_bits))))


def lsh_planes(dims: int, tables: int, bits: int, seed: int) -> np.ndarray:
    """(tables, bits, dims) standard normal hyperplane normals, float64. Table t draws from its own
    stream (seed, t), row by row, so the first b planes of a table are the same whatever ``bits`` is:
    groups of different sizes share their first planes."""
    if bits <= 0:
        return np.zeros((tables, 0, dims))
    return np.stack([np.random.default_rng([seed, t]).standard_normal((bits, dims)) for t in range(tables)])


def lsh_signatures(vectors, centre, planes: np.ndarray) -> np.ndarray:
    """(n, tables) int64: bit j (from the most significant) of column t is 1 where vector - centre
    lies on the positive side of plane j of table t. The centre (the group's mean) puts the planes
    through the data: nonnegative vectors (the model-free backend's) all lie in one orthant, which
    planes through the origin split poorly."""
    data = _as_vectors(vectors) - np.asarray(centre, dtype=np.float64)
    tables, bits, _ = planes.shape
    out = np.zeros((len(data), tables), dtype=np.int64)
    if bits == 0:
        return out
    weights = np.left_shift(np.int64(1), np.arange(bits - 1, -1, -1, dtype=np.int64))
    for t in range(tables):
        out[:, t] = ((data @ planes[t].T) > 0).astype(np.int64) @ weights
    return out


def lsh_tree_cut(signatures, counts, bits: int, max_bucket: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(depth, prefix) of each distinct leaf signature's bucket: its shallowest ancestor (depth >=
    ``start``; the ancestor at depth d is signature >> (bits - d)) whose leaves hold at most
    ``max_bucket`` images in all (``counts``: images per leaf). A leaf with no such ancestor is its own
    bucket (depth ``bits``), over the cap: the caller splits it. Leaves under one ancestor all get it,
    so the buckets partition the images."""
    signatures = np.asarray(signatures, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    depth = np.full(len(signatures), bits, dtype=np.int64)
    prefix = signatures.copy()
    open_ = np.ones(len(signatures), dtype=bool)
    for d in range(start, bits + 1):
        where = np.flatnonzero(open_)
        if len(where) == 0:
            break
        node = signatures[where] >> np.int64(bits - d)
        _, inverse = np.unique(node, return_inverse=True)
        fits = np.bincount(inverse, weights=counts[where])[inverse] <= max_bucket
        chosen = where[fits]
        depth[chosen], prefix[chosen], open_[chosen] = d, node[fits], False
    return depth, prefix


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal consecutive keys."""
    if len(keys) == 0:
        return np.empty(0, np.int64)
    starts = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1]
    return np.arange(len(keys)) - np.repeat(starts, np.diff(np.r_[starts, len(keys)]))


def bucket_edges(vectors, k: int, min_cosine: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, weight) within one bucket: each image's k most similar others by exact cosine
    (float64), kept where the cosine is positive and at least ``min_cosine``; by src, then weight
    descending, then dst. Cosines are rounded to ``COSINE_DECIMALS`` places first, so that equal
    vectors tie exactly (BLAS may give their products different last bits from one matrix shape or
    thread count to another) and a tie goes to the lower index, on every run."""
    data = _as_vectors(vectors)
    n = len(data)
    k = min(int(k), n - 1)
    if n < 2 or k < 1:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    cosine = np.round(data @ data.T, COSINE_DECIMALS)
    np.fill_diagonal(cosine, -np.inf)
    # each row's k-th largest cosine; above it all are taken, at it the lowest indices (no full sort)
    kth = -np.partition(-cosine, k - 1, axis=1)[:, k - 1:k]
    above = cosine > kth
    at = cosine == kth
    chosen = above | (at & (np.cumsum(at, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    src, dst = np.nonzero(chosen)
    weight = cosine[src, dst]
    order = np.lexsort((dst, -weight, src))
    src, dst, weight = src[order], dst[order], weight[order]
    keep = (weight > 0) & (weight >= min_cosine)
    return src[keep].astype(np.int64), dst[keep].astype(np.int64), weight[keep]


def top_k_edges(src, dst, weight, k: int, order=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each source's k best edges, a pair found more than once counted once (its largest weight);
    ordered by src, then weight descending, then ``order[dst]`` (default: dst) ascending."""
    src, dst, weight = (np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(weight, np.float64))
    size = max(src.max(initial=-1), dst.max(initial=-1)) + 1
    rank = np.asarray(order if order is not None else np.arange(size), dtype=np.int64)
    pair = src * size + dst
    by = np.lexsort((-weight, pair))                          # pairs together, their largest weight first
    pair, src, dst, weight = pair[by], src[by], dst[by], weight[by]
    first = np.r_[True, pair[1:] != pair[:-1]]
    src, dst, weight = src[first], dst[first], weight[first]
    by = np.lexsort((rank[dst], -weight, src))
    src, dst, weight = src[by], dst[by], weight[by]
    keep = _rank_in_runs(src) < k
    return src[keep], dst[keep], weight[keep]


def lsh_knn(vectors, k: int, tables: int = 12, max_bucket: int = 1024, extra_bits: int = 8, min_cosine: float = 0.0,
            seed: int = 23, ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(src, dst, weight, stats): each image's k most similar among its LSH candidates (the buckets
    described above), in one process; the same buckets and edges as the distributed path
    (``visualrank.knn_edges``) for the same ``ids`` (identifier strings: they order the split of an
    oversize leaf and break ties, as the distributed path does).

    stats: ``tables``, ``bits``, ``max_bucket``, ``bound_per_image`` (tables x (max_bucket - 1)),
    ``candidates_per_image`` (an (n,) array: others compared with, summed over tables),
    ``candidate_pairs`` (pairs compared, summed over tables), ``buckets``, ``buckets_capped`` (leaves
    over the cap, split) and ``images_in_capped_buckets`` (summed over tables)."""
    data = _as_vectors(vectors)
    n, dims = data.shape
    if n == 0:
        raise ValueError("lsh_knn needs at least one vector")
    order = np.arange(n) if ids is None else np.argsort(np.argsort(np.asarray(ids, dtype=object), kind="stable"),
                                                             kind="stable")
    bits = lsh_bits(n, max_bucket, extra_bits)
    signatures = lsh_signatures(data, data.mean(axis=0), lsh_planes(dims, tables, bits, seed))
    cut_from = max(0, bits - LSH_CUT_BITS)                    # the depth the distributed tree cut starts at
    per_image = np.zeros(n, dtype=np.int64)
    stats = {"tables": tables, "bits": bits, "max_bucket": max_bucket, "bound_per_image": tables * (max_bucket - 1),
             "candidate_pairs": 0, "buckets": 0, "buckets_capped": 0, "images_in_capped_buckets": 0}
    sources, targets, weights = [], [], []
    for t in range(tables):
        leaves, inverse, counts = np.unique(signatures[:, t], return_inverse=True, return_counts=True)
        depth, prefix = lsh_tree_cut(leaves, counts, bits, max_bucket, cut_from)
        _, node = np.unique(np.stack([depth, prefix], axis=1), axis=0, return_inverse=True)
        member_node = node.ravel()[inverse.ravel()]
        size = np.bincount(member_node)[member_node]
        by_node = np.lexsort((order, member_node))                    # each node's images in identifier order
        chunk = np.empty(n, dtype=np.int64)
        chunk[by_node] = _rank_in_runs(member_node[by_node]) % -(-size[by_node] // max_bucket)
        capped = size > max_bucket
        stats["buckets_capped"] += len(np.unique(member_node[capped]))
        stats["images_in_capped_buckets"] += int(capped.sum())
        by_bucket = np.lexsort((order, chunk, member_node))
        key = member_node[by_bucket] * (n + 1) + chunk[by_bucket]
        cuts = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1, n]
        for start, end in zip(cuts[:-1], cuts[1:]):
            members = by_bucket[start:end]
            stats["buckets"] += 1
            per_image[members] += len(members) - 1
            stats["candidate_pairs"] += len(members) * (len(members) - 1) // 2
            if len(members) > 1:
                s, d, w = bucket_edges(data[members], k, min_cosine)
                sources.append(members[s])
                targets.append(members[d])
                weights.append(w)
    stats["candidates_per_image"] = per_image
    if not sources:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64), stats
    return (*top_k_edges(np.concatenate(sources), np.concatenate(targets), np.concatenate(weights), k, order), stats)


def clustered_vectors(n: int, dims: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, cluster of each): n unit float32 vectors in clusters of Zipf-distributed sizes around a
    shared direction, like real embeddings: synthetic data for the benchmarks and the tests."""
    rng = np.random.default_rng([seed, n])
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(min(rng.zipf(1.7), max(n // 5, 1))))
    sizes[-1] -= sum(sizes) - n
    common = rng.normal(size=dims) / np.sqrt(dims)
    centres = 0.35 * common + rng.normal(size=(len(sizes), dims)) / np.sqrt(dims)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    noise = rng.uniform(0.4, 1.2, size=(n, 1)) * rng.normal(size=(n, dims)) / np.sqrt(dims)
    vectors = centres[cluster] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = rng.permutation(n)
    return vectors[order].astype(np.float32), cluster[order]
