"""Stages: list scheduling over the DAG, at most max_parallel steps a stage.

Stage by stage, the ready steps (every dependency in an earlier stage) are
taken in rank order: priority first, then the longest estimated chain still
waiting behind the step (so the critical path is not starved), then pack and
tool. Without a cap this is exactly the topological generations; with one,
stages stay maximal: a step is later than its dependencies allow only
because every stage in between is full of steps that ranked higher.

The graph arrives as plain adjacency (node -> its neighbours): these loops
read it a few hundred thousand times for a large backlog.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

# Nodes are item ids: hashable, and ordered, which breaks ties between equals.
N = TypeVar("N", bound=str)


def bottom_levels(succ: Mapping[N, Collection[N]], order: Sequence[N], duration: Mapping[N, int]) -> dict[N, int]:
    """Per node, the longest estimated chain from it to the end of the plan
    (`order` is a topological order)."""
    level: dict[N, int] = {}
    for node in reversed(order):
        longest = 0
        for nxt in succ[node]:
            if level[nxt] > longest:
                longest = level[nxt]
        level[node] = duration[node] + longest
    return level


def assign_stages(
    pred: Mapping[N, Collection[N]], succ: Mapping[N, Collection[N]], capacity: int, rank: Callable[[N], Any]
) -> dict[N, int]:
    """Stage number per node."""
    waiting = {node: len(preds) for node, preds in pred.items()}
    ready = [(rank(node), node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    stage_of: dict[N, int] = {}
    stage = 0
    while ready:
        taken = [heapq.heappop(ready)[1] for _ in range(min(capacity, len(ready)))]
        released = []
        for node in taken:
            stage_of[node] = stage
            for nxt in succ[node]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    released.append(nxt)
        for node in released:  # ready from the next stage on, not this one
            heapq.heappush(ready, (rank(node), node))
        stage += 1
    return stage_of


def critical_path(
    pred: Mapping[N, Collection[N]], order: Iterable[N], duration: Mapping[N, int]
) -> tuple[int, list[N]]:
    """The longest chain of estimated durations, and its nodes in order
    (`order` is a topological order). Between chains of equal length the
    smaller node ids win, so the answer does not depend on the order the
    backlog rows came in."""
    finish: dict[N, int] = {}
    via: dict[N, N | None] = {}
    for node in order:
        best, best_pred = 0, None
        for dep in pred[node]:
            # the first always: a dependency that takes no time is still on the path
            if best_pred is None or finish[dep] > best or (finish[dep] == best and dep < best_pred):
                best, best_pred = finish[dep], dep
        finish[node] = best + duration[node]
        via[node] = best_pred
    if not finish:
        return 0, []
    longest = max(finish.values())
    end = min(node for node, at in finish.items() if at == longest)
    path = [end]
    while (prev := via[path[-1]]) is not None:
        path.append(prev)
    path.reverse()
    return finish[end], path
