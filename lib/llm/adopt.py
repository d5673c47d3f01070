"""adopt: the deterministic plan, restaged the way a valid proposal says.

Pure. The steps stay exactly the same (ids, idempotency tokens, rollback,
estimates, dependencies): only their stage and position change, so adopting a
model's proposal never changes what runs, only when. A proposal stage wider
than max_parallel is split, in the proposal's order, into consecutive stages;
that keeps every dependency satisfied, since all of a stage's dependencies are
in earlier stages.
"""

from __future__ import annotations

import dataclasses

from lib.llm.proposal import check_proposal
from lib.planner.models import PlanDraft, PlanStep


def restaged(stages: list[list[str]], max_parallel: int) -> list[list[str]]:
    out: list[list[str]] = []
    for stage in stages:
        for start in range(0, len(stage), max_parallel):
            out.append(stage[start : start + max_parallel])
    return out


def adopt(draft: PlanDraft, stages: list[list[str]], max_parallel: int) -> PlanDraft:
    check = check_proposal(draft, stages)
    if not check.valid:
        raise ValueError("an invalid proposal cannot be adopted: " + "; ".join(check.reasons))
    return adopt_checked(draft, stages, max_parallel)


def adopt_checked(draft: PlanDraft, stages: list[list[str]], max_parallel: int) -> PlanDraft:
    """adopt, for a proposal the caller has just found valid (check_proposal) for this draft."""
    by_key = {s.item_key: s for s in draft.steps}
    steps: list[PlanStep] = []
    stage_ids: list[list[str]] = []
    for number, keys in enumerate(restaged(stages, max_parallel)):
        ids = []
        for position, key in enumerate(keys):
            step = dataclasses.replace(by_key[key], stage=number, position=position)
            steps.append(step)
            ids.append(step.id)
        stage_ids.append(ids)
    duration = {s.id: s.est_duration_ms for s in steps}
    totals = draft.totals.model_copy(
        update={
            "stages": len(stage_ids),
            # the DAG is unchanged, so its critical path is too; the staged duration is not
            "est_duration_ms": sum(max(duration[i] for i in stage) for stage in stage_ids),
        }
    )
    graph = draft.graph.model_copy(
        update={"depth": len(stage_ids), "max_width": max((len(s) for s in stage_ids), default=0)}
    )
    return draft.model_copy(update={"steps": steps, "stages": stage_ids, "totals": totals, "graph": graph})
