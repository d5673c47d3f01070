"""GET /api/metrics in Prometheus' text format: the Phase 2 tool metrics
(runs, durations, cost per tool and status), the state of plans, steps and
approvals, and how the machinery behind them is doing (lib/ops/work_metrics.py):
events, Realtime broadcasts, notifications, idempotency replays, step
attempts, and how far behind the workers are."""

from __future__ import annotations

from typing import Any

from lib.ops import work_metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: dict[str, Any], value: Any) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {float(value):.6g}" if inner else f"{name} {float(value):.6g}"


def exposition(conn: Any) -> str:
    lines: list[str] = []
    runs = conn.execute(
        "SELECT tool_id, status, count(*) AS n, sum(duration_ms) / 1000.0 AS seconds, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) / 1000.0 AS p50, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) / 1000.0 AS p95, "
        "coalesce(sum(cost_usd), 0) AS cost, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced "
        "FROM public.tool_metrics GROUP BY tool_id, status ORDER BY tool_id, status"
    ).fetchall()
    lines += ["# HELP nofx_tool_runs_total Tool runs recorded by the executor.", "# TYPE nofx_tool_runs_total counter"]
    lines += [_sample("nofx_tool_runs_total", {"tool": r["tool_id"], "status": r["status"]}, r["n"]) for r in runs]
    lines += ["# HELP nofx_tool_duration_seconds Tool run durations.", "# TYPE nofx_tool_duration_seconds summary"]
    for r in runs:
        labels = {"tool": r["tool_id"], "status": r["status"]}
        lines.append(_sample("nofx_tool_duration_seconds", {**labels, "quantile": "0.5"}, r["p50"]))
        lines.append(_sample("nofx_tool_duration_seconds", {**labels, "quantile": "0.95"}, r["p95"]))
        lines.append(_sample("nofx_tool_duration_seconds_sum", labels, r["seconds"]))
        lines.append(_sample("nofx_tool_duration_seconds_count", labels, r["n"]))
    lines += ["# HELP nofx_tool_cost_usd_total Known cost of tool runs.", "# TYPE nofx_tool_cost_usd_total counter"]
    lines += [
        _sample("nofx_tool_cost_usd_total", {"tool": r["tool_id"], "status": r["status"]}, r["cost"]) for r in runs
    ]
    lines += [
        "# HELP nofx_tool_unpriced_runs_total Runs whose cost is unknown (never counted as $0).",
        "# TYPE nofx_tool_unpriced_runs_total counter",
    ]
    lines += [
        _sample("nofx_tool_unpriced_runs_total", {"tool": r["tool_id"], "status": r["status"]}, r["unpriced"])
        for r in runs
    ]
    for table, metric, help_text in (
        ("plans", "nofx_plans", "Plans by status."),
        ("plan_steps", "nofx_steps", "Plan steps by status."),
        ("approvals", "nofx_approvals", "Approvals by status."),
    ):
        rows = conn.execute(
            f"SELECT status, count(*) AS n FROM public.{table} GROUP BY status ORDER BY status"  # noqa: S608 - fixed names
        ).fetchall()
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        lines += [_sample(metric, {"status": r["status"]}, r["n"]) for r in rows]
    lines += work_metrics.lines(conn, _sample)
    return "\n".join(lines) + "\n"
