"""From backlog items to a dependency graph, with what is wrong with it.

Edges point from a dependency to the item that waits for it. Dependencies on
items outside the selection are pulled in while open; a dependency that is
done is satisfied (and reported), one that is cancelled or missing is
reported for the structural gate to block on. Cycles do not raise: their
members are reported and the rest of the plan is still built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from lib.planner.models import OPEN_STATUSES, BacklogItem, Cycle, DependencyIssue


@dataclass
class DependencyGraph:
    items: dict[str, BacklogItem]  # the planned items, by id
    graph: nx.DiGraph
    issues: list[DependencyIssue] = field(default_factory=list)
    pulled_in: list[str] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)
    dag: nx.DiGraph | None = None  # what to schedule on: the graph, minus edges inside cycles
    generations: list[list[str]] = field(default_factory=list)  # topological generations of `dag`

    def adjacency(self) -> tuple[dict[str, Mapping[str, Any]], dict[str, Mapping[str, Any]]]:
        """(predecessors, successors) of `dag`: per node, networkx's own dict
        of neighbours, taken once through adjacency() rather than a view per
        lookup (the scheduling loops read them a few hundred thousand times).
        Nothing in scheduling depends on the order of a node's neighbours."""
        assert self.dag is not None
        return dict(nx.reverse_view(self.dag).adjacency()), dict(self.dag.adjacency())


def _edges(items: Mapping[str, BacklogItem]) -> Iterator[tuple[str, str]]:
    """(dependency, item) for each dependency inside the plan, once each, in
    the order the graph is built in."""
    for item_id, item in items.items():
        deps = item.depends_on
        if len(deps) > 1:
            deps = list(dict.fromkeys(deps))  # a repeated dependency is one edge
        for dep_id in deps:
            if dep_id in items:
                yield dep_id, item_id


def select(
    backlog: Mapping[str, BacklogItem], selected_ids: Iterable[str] | None
) -> tuple[dict[str, BacklogItem], list[DependencyIssue], list[str]]:
    """The items to plan: the selection (or every open item) plus open dependencies."""
    if selected_ids is None:
        roots = [item for item in backlog.values() if item.status == "open"]
    else:
        roots = [backlog[i] for i in selected_ids]
    chosen: dict[str, BacklogItem] = {}
    root_ids = {item.id for item in roots}
    issues: list[DependencyIssue] = []
    pulled_in: list[str] = []
    stack = list(reversed(roots))
    while stack:
        item = stack.pop()
        if item.id in chosen:
            continue
        chosen[item.id] = item
        if item.id not in root_ids:
            pulled_in.append(item.key)
        for dep_id in item.depends_on:
            dep = backlog.get(dep_id)
            if dep is None:
                issues.append(DependencyIssue(item_key=item.key, depends_on=dep_id, reason="missing"))
            elif dep.status in OPEN_STATUSES:
                if dep.id not in chosen:
                    stack.append(dep)
            else:
                issues.append(DependencyIssue(item_key=item.key, depends_on=dep.key, reason=dep.status))  # type: ignore[arg-type]
    return chosen, issues, pulled_in


def build(backlog: Mapping[str, BacklogItem], selected_ids: Iterable[str] | None) -> DependencyGraph:
    items, issues, pulled_in = select(backlog, selected_ids)
    graph = nx.DiGraph()
    graph.add_nodes_from(items)
    graph.add_edges_from(_edges(items))
    result = DependencyGraph(items=items, graph=graph, issues=issues, pulled_in=pulled_in, dag=graph)
    try:  # one pass both orders the DAG and proves it acyclic
        result.generations = [list(g) for g in nx.topological_generations(graph)]
    except nx.NetworkXUnfeasible:
        result.cycles = find_cycles(graph, items)
        result.dag = schedulable(result)
        result.generations = [list(g) for g in nx.topological_generations(result.dag)]
    return result


def find_cycles(graph: nx.DiGraph, items: Mapping[str, BacklogItem]) -> list[Cycle]:
    """Each strongly connected component that is a cycle, with one concrete loop."""
    cycles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (node,) = component
            if not graph.has_edge(node, node):
                continue
        loop = nx.find_cycle(_by_key(graph, component, items))
        path = [items[u].key for u, _ in loop] + [items[loop[0][0]].key]
        cycles.append(Cycle(members=sorted(items[n].key for n in component), path=path))
    cycles.sort(key=lambda c: c.members)
    return cycles


def _by_key(graph: nx.DiGraph, component: set[str], items: Mapping[str, BacklogItem]) -> nx.DiGraph:
    """The component as a graph of its own with nodes and edges in item-key
    order, so the loop reported is the same in every process: a subgraph view
    of a small component iterates a set, whose order follows the per-process
    string hash seed."""
    key = {n: items[n].key for n in component}
    ordered = nx.DiGraph()
    ordered.add_nodes_from(sorted(component, key=key.__getitem__))
    edges = [(u, v) for u in component for v in graph.successors(u) if v in component]
    ordered.add_edges_from(sorted(edges, key=lambda e: (key[e[0]], key[e[1]])))
    return ordered


def schedulable(dg: DependencyGraph) -> nx.DiGraph:
    """A DAG to schedule on, for a graph with cycles: the edges inside each
    strongly connected component are set aside (its members share a stage), so
    everything around a cycle still gets an order; the cycle itself stays
    reported, and the structural gate blocks the plan on it."""
    component = {}
    for number, members in enumerate(nx.strongly_connected_components(dg.graph)):
        for node in members:
            component[node] = number
    dag = nx.DiGraph()
    dag.add_nodes_from(dg.graph)
    dag.add_edges_from((u, v) for u, v in dg.graph.edges if component[u] != component[v])
    return dag
