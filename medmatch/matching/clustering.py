"""Clusters from auto-matched pairs that never join a hard-negative pair.

Edges are added strongest first; an edge that would put two records of a hard-negative pair
(or of a reviewer's cannot-link) in one cluster is refused. Every record ends in exactly one
cluster, singletons included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class _ConstrainedUnionFind:
    """Union-find over the records that have edges; a record without one is its own root."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.members: dict[str, set[str]] = {}
        self.forbidden: dict[str, set[str]] = {}

    def add(self, x: str) -> None:
        if x not in self.parent:
            self.parent[x] = x
            self.members[x] = {x}
            self.forbidden[x] = set()

    def find(self, x: str) -> str:
        if x not in self.parent:
            return x
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def forbid(self, a: str, b: str) -> None:
        self.add(a)
        self.add(b)
        self.forbidden[a].add(b)
        self.forbidden[b].add(a)

    def union(self, a: str, b: str) -> bool:
        self.add(a)
        self.add(b)
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        small, big = self.members[rb], self.members[ra]
        # refused when any member of one side must not meet any member of the other
        for m in small:
            if not self.forbidden[m].isdisjoint(big):
                return False
        self.parent[rb] = ra
        big |= small
        del self.members[rb]
        return True


def cluster(
    ids: Sequence[str],
    edges: Iterable[tuple[str, str, float]],
    cannot_link: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """record id -> cluster id (the smallest record id in the cluster)."""
    uf = _ConstrainedUnionFind()
    for a, b in cannot_link:
        uf.forbid(a, b)
    for a, b, _ in sorted(edges, key=lambda e: -e[2]):
        uf.union(a, b)
    label = {root: min(members) for root, members in uf.members.items()}
    return {i: label.get(uf.find(i), i) for i in ids}
