"""Each gate on crafted plans: allow, warn and block, with the remediation a
person would act on. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib.gates import compliance, resource, risk, structural
from lib.gates.evaluate import GateContext, evaluate_gates
from lib.planner import BacklogItem, PlanOptions, Tool, ToolStats, build_plan

TOOLS = {
    "read": Tool(id="read", category="test", cost_model={"usd_per_call": 1.0}, default_duration_ms=1000),
    "deploy": Tool(
        id="deploy",
        category="deploy",
        mutating=True,
        sensitive=True,
        approval_policy={"required_approvals": 2},
        rollback_template={"inputs": {"version": "{{inputs.previous}}"}},
        cost_model={"usd_per_call": 5.0},
    ),
    "deploy_unguarded": Tool(
        id="deploy_unguarded",
        category="deploy",
        mutating=True,
        rollback_template={"inputs": {}},
        cost_model={"usd_per_call": 1.0},
    ),
    "secret": Tool(id="secret", sensitive=True, cost_model={"usd_per_call": 0}),
    "export": Tool(id="export", category="export", mutating=True, approval_policy={}, rollback_template={"inputs": {}}),
    "free": Tool(id="free"),
}


def plan(spec: dict[str, list[str]], options: PlanOptions | None = None, stats=None, **fields):
    items = {}
    for key, deps in spec.items():
        extra = {k: v[key] for k, v in fields.items() if key in v}
        items[key] = BacklogItem(
            id=key,
            key=key,
            title=key,
            pack_id="p",
            tool_id=extra.pop("tool_id", "read"),
            depends_on=deps,
            inputs=extra.pop("inputs", {"previous": "v1"}),
            **extra,
        )
    return build_plan(items, TOOLS, stats or {}, options or PlanOptions())


def codes(gate) -> dict[str, str]:
    return {f.code: f.severity for f in gate.findings}


# ---------------------------------------------------------- structural ----


def test_structural_allows_a_clean_graph() -> None:
    gate = structural.evaluate(plan({"A": [], "B": ["A"]}))
    assert (gate.verdict, gate.score, gate.findings) == ("allow", 100, [])


def test_structural_warns_past_depth_and_width() -> None:
    chain = {f"S{i}": ([f"S{i - 1}"] if i else []) for i in range(6)}
    deep = structural.evaluate(plan(chain), structural.StructuralLimits(max_depth=3))
    assert deep.verdict == "warn" and "structural.too_deep" in codes(deep)
    assert "split the backlog" in deep.findings[0].remediation
    wide = structural.evaluate(plan({k: [] for k in "ABCDE"}), structural.StructuralLimits(max_width=2))
    assert codes(wide) == {"structural.too_wide": "warn"}
    assert "lower max_parallel" in wide.findings[0].remediation


def test_structural_blocks_a_cycle_with_its_members() -> None:
    gate = structural.evaluate(plan({"A": ["B"], "B": ["A"], "C": []}))
    (finding,) = gate.findings
    assert gate.verdict == "block" and finding.code == "structural.cycle"
    assert "A -> B -> A" in finding.message or "B -> A -> B" in finding.message
    assert finding.remediation.startswith("remove one dependency in the loop")


def test_structural_blocks_duplicate_tokens_and_orphans() -> None:
    draft = plan({"A": [], "B": ["A"]})
    draft.steps[1].idempotency_token = draft.steps[0].idempotency_token
    draft.steps[1].depends_on = ["not-in-this-plan"]
    found = codes(structural.evaluate(draft))
    assert found["structural.duplicate_token"] == "block"
    assert found["structural.orphan_dependency"] == "block"


# ---------------------------------------------------------------- risk ----


def test_risk_allows_plain_work() -> None:
    assert risk.evaluate(plan({"A": [], "B": ["A"]}), TOOLS).verdict == "allow"


def test_risk_warns_on_an_approved_production_change() -> None:
    gate = risk.evaluate(plan({"D": []}, tool_id={"D": "deploy"}, environment={"D": "production"}), TOOLS)
    assert codes(gate) == {"risk.sensitive_tool": "info", "risk.production_change": "warn"}
    assert gate.verdict == "warn"


def test_risk_blocks_what_nobody_approves() -> None:
    gate = risk.evaluate(
        plan({"S": [], "P": []}, tool_id={"S": "secret", "P": "deploy_unguarded"}, environment={"P": "production"}),
        TOOLS,
    )
    found = codes(gate)
    assert found["risk.sensitive_without_approval"] == "block"
    assert found["risk.production_without_approval"] == "block"
    remediation = next(f.remediation for f in gate.findings if f.code == "risk.sensitive_without_approval")
    assert "approval_policy" in remediation


def test_risk_blast_radius_thresholds() -> None:
    spec = {"D": [], **{f"X{i}": ["D"] for i in range(12)}}
    warned = risk.evaluate(
        plan(spec, tool_id={"D": "deploy"}, environment={"D": "staging"}),
        TOOLS,
        risk.RiskSettings(blast_radius_warn=10, blast_radius_block=20),
    )
    assert codes(warned)["risk.blast_radius"] == "warn"
    assert "12 steps depend" in next(f.message for f in warned.findings if f.code == "risk.blast_radius")
    blocked = risk.evaluate(
        plan(spec, tool_id={"D": "deploy"}), TOOLS, risk.RiskSettings(blast_radius_warn=3, blast_radius_block=5)
    )
    assert codes(blocked)["risk.blast_radius"] == "block" and blocked.verdict == "block"


# ---------------------------------------------------------- compliance ----

POLICIES = compliance.load_policy_set()
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def comply(draft, options=None, settings=None, now=NOW, policies=POLICIES):
    return compliance.evaluate(draft, TOOLS, options or PlanOptions(), settings or {}, now, policies)


def test_compliance_allows_a_tagged_export() -> None:
    gate = comply(plan({"E": []}, tool_id={"E": "export"}, tags={"E": ["compliance:gdpr"]}))
    assert gate.verdict == "allow", gate.findings


def test_compliance_denies_an_untagged_export_and_an_unapproved_production_deploy() -> None:
    gate = comply(
        plan({"E": [], "P": []}, tool_id={"E": "export", "P": "deploy_unguarded"}, environment={"P": "production"})
    )
    found = {f.code: f for f in gate.findings}
    assert found["compliance.export_without_tag"].severity == "block"
    assert "compliance:gdpr" in found["compliance.export_without_tag"].remediation
    assert found["compliance.production_deploy_without_approval"].item_key == "P"
    assert gate.verdict == "block"


def test_compliance_warns_without_auto_rollback_and_not_with_it() -> None:
    draft = plan({"P": []}, tool_id={"P": "deploy"}, environment={"P": "production"})
    assert codes(comply(draft)) == {"compliance.production_without_auto_rollback": "warn"}
    assert comply(draft, PlanOptions(rollback_on_failure=True)).verdict == "allow"


def test_compliance_freeze_window_from_config() -> None:
    draft = plan({"P": []}, tool_id={"P": "deploy"})
    window = {
        "start": (NOW - timedelta(hours=1)).isoformat(),
        "end": (NOW + timedelta(hours=1)).isoformat(),
        "reason": "Black Friday",
    }
    frozen = comply(draft, settings={"gates.compliance.freeze_windows": [window]})
    finding = next(f for f in frozen.findings if f.code == "compliance.freeze_window")
    assert finding.severity == "block" and "Black Friday" in finding.message
    later = comply(draft, settings={"gates.compliance.freeze_windows": [window]}, now=NOW + timedelta(hours=2))
    assert "compliance.freeze_window" not in codes(later)
    reading = comply(plan({"R": []}), settings={"gates.compliance.freeze_windows": [window]})
    assert reading.verdict == "allow"  # nothing changes, nothing to freeze


def test_a_policy_that_does_not_compile_blocks_with_its_name() -> None:
    broken = compliance.load_policy_set([{"name": "typo", "source": "package nofx.step\ndeny contains x if {{{"}])
    with pytest.raises(compliance.PolicyError, match="'typo' does not compile"):
        compliance.Engine(broken)
    gate = comply(plan({"A": []}), policies=broken)
    assert gate.verdict == "block"
    assert gate.findings[0].code == "compliance.policy_error" and "typo" in gate.findings[0].message


def test_database_policies_replace_add_and_disable_files() -> None:
    extra = (
        'package nofx.step\nimport rego.v1\nwarn contains {"step": s.key, "code": "c.custom", "msg": "custom", '
        '"remediation": "r"} if {\n some s in input.steps\n s.tool_id == "read"\n}\n'
    )
    policies = compliance.load_policy_set(
        [
            {"name": "custom_rule", "source": extra, "enabled": True},
            {"name": "production_rollback_on_failure", "source": "", "enabled": False},
        ]
    )
    assert "custom_rule" in policies.sources and "production_rollback_on_failure" not in policies.sources
    assert policies.version != POLICIES.version
    assert codes(comply(plan({"A": []}), policies=policies)) == {"c.custom": "warn"}


def test_many_alike_steps_are_evaluated_once_per_kind_of_step() -> None:
    draft = plan({f"E{i}": [] for i in range(300)}, tool_id={f"E{i}": "export" for i in range(300)})
    gate = comply(draft)
    assert sum(1 for f in gate.findings if f.code == "compliance.export_without_tag") == 300
    assert gate.score >= 50  # one problem, many times: not three hundred problems


# ------------------------------------------------------------ resource ----

PRICES = {
    "usd_per_gb_month_database": 0.125,
    "usd_per_gb_month_storage": 0.021,
    "usd_per_million_invocations": 2.0,
    "bytes_per_row": 400,
}


def test_resource_allows_within_budget() -> None:
    gate = resource.evaluate(plan({"A": [], "B": []}), budget_usd=5, hard_limit_usd=100, supabase_prices=PRICES)
    assert gate.verdict == "allow"
    assert codes(gate) == {"resource.estimate": "info"}


def test_resource_warns_over_budget_and_blocks_over_the_hard_limit() -> None:
    draft = plan({"A": [], "B": [], "C": []})  # $3 of steps
    over = resource.evaluate(draft, budget_usd=2.5, hard_limit_usd=100, supabase_prices=PRICES)
    assert codes(over)["resource.over_budget"] == "warn"
    assert "options.budget_usd" in next(f.remediation for f in over.findings if f.code == "resource.over_budget")
    hard = resource.evaluate(draft, budget_usd=None, hard_limit_usd=2.0, supabase_prices=PRICES)
    assert codes(hard)["resource.over_hard_limit"] == "block" and hard.verdict == "block"


def test_resource_never_counts_an_unknown_price_as_zero() -> None:
    draft = plan({"A": [], "F": []}, tool_id={"F": "free"})
    gate = resource.evaluate(draft, budget_usd=None, hard_limit_usd=None, supabase_prices=PRICES)
    unknown = next(f for f in gate.findings if f.code == "resource.unknown_price")
    assert unknown.severity == "warn" and "free" in unknown.message
    assert draft.totals.unknown_cost_steps == 1
    models = [resource.ModelCost("openai:mystery", None, "not in the price table")]
    gate = resource.evaluate(draft, budget_usd=None, hard_limit_usd=None, supabase_prices=PRICES, model_costs=models)
    assert codes(gate)["resource.unknown_model_price"] == "warn"


def test_resource_unknown_tool_falls_back_to_a_stated_default() -> None:
    draft = plan({"F": []}, tool_id={"F": "free"})
    gate = resource.evaluate(draft, budget_usd=None, hard_limit_usd=None, supabase_prices=PRICES)
    finding = next(f for f in gate.findings if f.code == "resource.default_duration")
    assert "stated default" in finding.message


MEASURED = {
    "measured_at": "2026-12-05T10:00:00+00:00",
    "plans_sampled": 40,
    "database_bytes_per_step": 5_000.0,
    "storage_bytes_per_step": 2_000.0,
    "storage_source": "storage.objects metadata",
    "invocations_per_step": 2.5,
}


def test_resource_estimates_from_metrics_and_the_measured_supabase_footprint() -> None:
    stats = {"read": ToolStats(tool_id="read", samples=10, p50_ms=2000, p95_ms=9000, avg_cost_usd=0.25)}
    draft = plan({"A": [], "B": ["A"]}, stats=stats)
    usage = resource.Usage(measured=MEASURED, retention_months=6)
    summary = resource.summary(draft, PRICES, usage=usage)
    assert summary["steps_cost_usd"] == 0.5
    footprint = summary["supabase"]
    assert (footprint["database_bytes"], footprint["storage_bytes"], footprint["function_invocations"]) == (
        10_000,
        4_000,
        5.0,
    )
    gb = 1024**3
    expected = (
        10_000 / gb * PRICES["usd_per_gb_month_database"] * 6
        + 4_000 / gb * PRICES["usd_per_gb_month_storage"] * 6
        + 5.0 / 1e6 * PRICES["usd_per_million_invocations"]
    )
    assert footprint["cost_usd"] == round(expected, 6) and footprint["unknown"] == []
    assert summary["total_usd"] == pytest.approx(0.5 + footprint["cost_usd"])
    # stored longer costs more: bytes are priced per GB-month
    longer = resource.summary(draft, PRICES, usage=resource.Usage(measured=MEASURED, retention_months=60))
    assert longer["supabase"]["cost_usd"] > footprint["cost_usd"]
    note = next(
        f for f in resource.evaluate(draft, None, None, PRICES, usage=usage).findings if f.code == "resource.estimate"
    )
    assert "measured 2026-12-05T10:00:00+00:00 from 40 finished plan(s), stored 6 months" in note.message


def test_an_unmeasured_footprint_is_unknown_never_zero() -> None:
    draft = plan({"A": [], "B": ["A"]})
    nothing = resource.summary(draft, PRICES)
    assert nothing["supabase"]["cost_usd"] is None
    assert nothing["supabase"]["unknown"] == ["database_bytes", "storage_bytes", "function_invocations"]
    note = next(f for f in resource.evaluate(draft, None, None, PRICES).findings if f.code == "resource.estimate")
    assert "Supabase unknown (not measured yet" in note.message
    partial = resource.summary(
        draft, PRICES, usage=resource.Usage(measured={**MEASURED, "storage_bytes_per_step": None})
    )
    assert partial["supabase"]["unknown"] == ["storage_bytes"] and partial["supabase"]["storage_bytes"] is None
    assert partial["supabase"]["cost_usd"] > 0


# ------------------------------------------------------------- combined ----


def test_the_plan_verdict_is_the_worst_gate() -> None:
    draft = plan({"E": [], "R": []}, tool_id={"E": "export"})  # untagged export: compliance blocks
    evaluation = evaluate_gates(draft, GateContext(tools=TOOLS, settings={"gates.resource.supabase_prices": PRICES}))
    verdicts = {g.gate: g.verdict for g in evaluation.gates}
    assert verdicts["compliance"] == "block" and evaluation.verdict == "block"
    assert [s.item_key for s in evaluation.steps] == ["E"]
    assert evaluation.policy_version.startswith("sha256:")


def test_the_resource_gate_and_its_summary_come_from_one_estimate() -> None:
    draft = plan({"A": [], "B": ["A"], "F": []}, tool_id={"F": "free"})
    models = [resource.ModelCost("openai:a", 0.123456789, None), resource.ModelCost("openai:b", None, "no price")]
    gate, summary = resource.assess(draft, 2.0, 100.0, PRICES, models)
    assert gate.gate == "resource"
    assert summary == resource.summary(draft, PRICES, models)
    assert summary["models_cost_usd"] == round(0.123456789, 6)
    assert summary["total_usd"] == round(
        draft.totals.est_cost_usd + 0.123456789 + (summary["supabase"]["cost_usd"] or 0), 6
    )
    ctx = GateContext(tools=TOOLS, settings={"gates.resource.supabase_prices": PRICES}, model_costs=models)
    evaluation = evaluate_gates(draft, ctx)
    assert evaluation.resource_summary == summary
    assert evaluation.gates[-1] == resource.evaluate(draft, None, 250.0, PRICES, models)


def test_the_shipped_policies_are_read_once_and_rows_go_on_a_copy() -> None:
    shipped = compliance.load_policy_set()
    assert compliance.load_policy_set([]) is shipped
    on_disk = {p.stem: p.read_text() for p in sorted(compliance.POLICY_DIR.glob("*.rego"))}
    assert shipped.sources == on_disk and shipped == compliance.PolicySet.of(on_disk)
    name = next(iter(on_disk))
    changed = compliance.load_policy_set(
        [{"name": name, "source": "package x", "enabled": True}, {"name": "extra", "source": "package y"}]
    )
    assert changed.sources[name] == "package x" and changed.sources["extra"] == "package y"
    dropped = compliance.load_policy_set([{"name": name, "source": "", "enabled": False}])
    assert name not in dropped.sources
    assert compliance.load_policy_set().sources == on_disk  # the cached files are untouched
    assert len({shipped.version, changed.version, dropped.version}) == 3
