"""A conversation as a tree: every message names its parent (None for the first of a branch at the top),
so regenerating or editing adds a sibling and nothing said is ever deleted. What the page shows, the model
reads and the exports carry is one branch: the path from the top to a leaf (the one last shown).

Plain functions of (id, parent id, position) rows: the repository reads a conversation's rows and asks
these; no SQL here. Position is the order messages were written in, unique per conversation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol


class Node(Protocol):
    id: int
    parent_id: int | None
    position: int


@dataclass
class Tree:
    nodes: dict[int, Node]
    children: dict[int | None, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, rows) -> "Tree":
        tree = cls({r.id: r for r in rows})
        for r in sorted(rows, key=lambda r: r.position):  # siblings oldest first
            parent = r.parent_id if r.parent_id in tree.nodes else None  # an orphan hangs from the top
            tree.children[parent].append(r.id)
        return tree

    def path(self, leaf: int | None) -> list[int]:
        """The ids from the top down to `leaf` (a missing leaf: the newest branch)."""
        if leaf not in self.nodes:
            leaf = self.newest_leaf(None)
        out = []
        while leaf is not None:
            out.append(leaf)
            parent = self.nodes[leaf].parent_id
            leaf = parent if parent in self.nodes else None
        return out[::-1]

    def siblings(self, message_id: int) -> list[int]:
        """The message and its siblings (the answers to one message, the versions of one edit), oldest first."""
        parent = self.nodes[message_id].parent_id
        return list(self.children[parent if parent in self.nodes else None])

    def newest_leaf(self, below: int | None) -> int | None:
        """Down from a message (None: the top), always to the newest child: the branch written last."""
        at = below
        while self.children.get(at):
            at = self.children[at][-1]
        return at
