"""Fixed-seed stratified train/test splitting that never lets identical texts straddle."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

__all__ = ["allocate", "normalize_for_dedup", "split_indices", "stratified_subsample"]


def normalize_for_dedup(text: str) -> str:
    """Whitespace-insensitive form used to find identical documents."""
    return " ".join(text.split())


def allocate(total: int, class_counts: dict[int, int]) -> dict[int, int]:
    """Share ``total`` among classes in proportion to their counts (largest remainder)."""
    n = sum(class_counts.values())
    if n == 0 or total <= 0:
        return {c: 0 for c in class_counts}
    exact = {c: total * k / n for c, k in class_counts.items()}
    alloc = {c: math.floor(x) for c, x in exact.items()}
    left = total - sum(alloc.values())
    # ties broken by class id so the result is deterministic
    for c in sorted(exact, key=lambda c: (-(exact[c] - alloc[c]), c))[:left]:
        alloc[c] += 1
    return alloc


def split_indices(
    texts: Sequence[str], labels: Sequence[int], *, test_size: float, seed: int
) -> tuple[list[int], list[int]]:
    """Stratified split with ``ceil(test_size * n)`` test items (sklearn's rounding).

    Texts that occur more than once (after whitespace normalisation) all go to train, so
    no duplicate straddles the split; the test items of each class are drawn from its
    unique texts with a fixed seed.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    norm = [normalize_for_dedup(t) for t in texts]
    seen = Counter(norm)
    unique_by_class: dict[int, list[int]] = defaultdict(list)
    for i, (t, y) in enumerate(zip(norm, labels, strict=True)):
        if seen[t] == 1:
            unique_by_class[y].append(i)
    n_test = math.ceil(test_size * len(texts))
    test = _draw(unique_by_class, allocate(n_test, dict(Counter(labels))), seed=seed)
    test_set = set(test)
    train = [i for i in range(len(texts)) if i not in test_set]
    return train, sorted(test)


def stratified_subsample(labels: Sequence[int], n: int, *, seed: int) -> list[int]:
    """Indices of a stratified subsample of size ``min(n, len(labels))``, in original order."""
    if n >= len(labels):
        return list(range(len(labels)))
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    return sorted(_draw(by_class, allocate(n, {c: len(v) for c, v in by_class.items()}), seed=seed))


def _draw(pools: dict[int, list[int]], alloc: dict[int, int], *, seed: int) -> list[int]:
    """``alloc[c]`` indices drawn at random from each class's pool (classes in id order)."""
    rng = random.Random(seed)
    out: list[int] = []
    for c in sorted(alloc):
        pool = sorted(pools.get(c, []))
        rng.shuffle(pool)
        out.extend(pool[: alloc[c]])
    return out
