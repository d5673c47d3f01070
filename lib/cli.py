"""`python -m lib.cli <command>`: the project's command line.

token --role admin          mint a local development token
plan-file backlog.json      plan a backlog file and print its stages (no database needed)
migrate                     apply supabase/migrations to DATABASE_URL (or the embedded database)
seed                        load supabase/seed.sql (the demo backlog)
dev                         migrate, seed, print a token and a curl line, serve on :$PORT (3000)
serve                       serve the api/ functions and public/ on :$PORT (3000)
smoke --surface planner --base-url URL
                            the whole planner story against a running server
audit-verify                verify every audit chain and the snapshots they point to
audit-replay PLAN_ID        step through a plan's history
db-url                      print the database URL in use (starts the embedded one if needed)
db-stop                     stop the embedded PostgreSQL
routes                      list the function routes the dev server (and Vercel) serve
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from lib import settings

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


@command("token")
def _token(args: argparse.Namespace) -> int:
    from lib.web import auth

    print(auth.mint_token(args.role, subject=args.subject, email=args.email, ttl_seconds=args.ttl))
    return 0


@command("migrate")
def _migrate(args: argparse.Namespace) -> int:
    from lib.data import db, migrate

    url = db.resolve_url()
    applied = migrate.migrate(url)
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")
    return 0


@command("seed")
def _seed(args: argparse.Namespace) -> int:
    from lib.data import db

    with db.connect() as conn:
        conn.execute((settings.ROOT / "supabase" / "seed.sql").read_text())
        conn.commit()
        row = conn.execute("SELECT count(*) AS n FROM public.backlog_items").fetchone()
    print(f"seeded: {row['n'] if row else 0} backlog items")
    return 0


@command("db-url")
def _db_url(args: argparse.Namespace) -> int:
    from lib.data import db

    print(db.resolve_url())
    return 0


@command("plan-file")
def _plan_file(args: argparse.Namespace) -> int:
    """Plan a backlog JSON file and print the stages; no database needed."""
    from pathlib import Path

    from lib.gates import structural
    from lib.planner import PlanOptions, build_plan, files

    backlog, tools = files.load(Path(args.file))
    draft = build_plan(backlog, tools, {}, PlanOptions(max_parallel=args.max_parallel))
    keys = {s.id: s.item_key for s in draft.steps}
    for number, stage in enumerate(draft.stages):
        print(f"stage {number}: {', '.join(keys[i] for i in stage)}")
    t = draft.totals
    print(
        f"\n{t.steps} steps in {t.stages} stages; critical path {' -> '.join(keys[i] for i in t.critical_path)}"
        f" ({t.critical_path_ms / 60000:.1f} min); estimated cost ${t.est_cost_usd:.2f}"
        + ("" if t.cost_complete else f" + {t.unknown_cost_steps} step(s) of unknown price")
    )
    gate = structural.evaluate(draft)
    print(f"structural gate: {gate.verdict} ({gate.score})")
    for finding in gate.findings:
        print(f"  [{finding.severity}] {finding.message}\n         -> {finding.remediation}")
    return 0 if gate.verdict != "block" else 2


@command("audit-verify")
def _audit_verify(args: argparse.Namespace) -> int:
    """Verify every chain of the audit log, and every snapshot it points to."""
    from lib.data import db
    from lib.trail import audit, audit_report

    broken = 0
    with db.connect() as conn:
        chains = audit.chains(conn)
        for chain in chains:
            check, rows = audit.verify_chain(conn, chain)
            verified = audit_report.check_snapshots(conn, rows)
            bad_snapshots = [r["seq"] for r in rows if verified.get(r["id"]) is False]
            ok = check.ok and not bad_snapshots
            broken += not ok
            where = "" if ok else f"  first break: {check.first_break or {'snapshots': bad_snapshots}}"
            print(f"{'ok    ' if ok else 'BROKEN'} {chain}: {check.entries} entries{where}")
    print(f"{len(chains)} chains, {broken} broken")
    return 1 if broken else 0


@command("audit-replay")
def _audit_replay(args: argparse.Namespace) -> int:
    """Step through a plan's history, with the state each snapshot recorded."""
    import json as jsonlib

    from lib.data import db, uploads
    from lib.trail import audit

    with db.connect() as conn:
        check, rows = audit.verify_chain(conn, audit.chain_for(args.plan_id))
        snapshots = {r["snapshot_key"]: uploads.read(conn, r["snapshot_key"]) for r in rows if r["snapshot_key"]}
    for row in rows:
        details = jsonlib.loads(row["content"]).get("details", {})
        summary = ", ".join(
            f"{k}={v}"
            for k, v in details.items()
            if k in ("status", "verdict", "reason", "item_key", "approval_id", "error", "attempt")
        )
        print(
            f"#{row['seq']:>4} {row['occurred_at']:%Y-%m-%d %H:%M:%S} {row['actor']:<28} {row['action']:<26} {summary}"
        )
        if row["snapshot_key"]:
            snap = jsonlib.loads(snapshots[row["snapshot_key"]])
            statuses: dict[str, int] = {}
            for step in snap["steps"]:
                statuses[step[3]] = statuses.get(step[3], 0) + 1
            print(
                f"       snapshot: plan {snap['plan']['status']}, steps {statuses}, "
                f"approvals {[a['status'] for a in snap['approvals']]}"
            )
    print(f"chain {'verified' if check.ok else 'BROKEN: ' + str(check.first_break)}")
    return 0 if check.ok else 1


@command("smoke")
def _smoke(args: argparse.Namespace) -> int:
    """The whole planner story against a running server."""
    from lib.ops import smoke

    return smoke.main(args.surface, args.base_url)


@command("db-stop")
def _db_stop(args: argparse.Namespace) -> int:
    from lib.data import embedded_db

    embedded_db.stop()
    return 0


@command("routes")
def _routes(args: argparse.Namespace) -> int:
    from lib.web import devserver

    print("\n".join(devserver.routes_table()))
    return 0


@command("serve")
def _serve(args: argparse.Namespace) -> int:
    from lib.web import devserver

    os.environ.setdefault("NOFX_PUBLIC_URL", f"http://{args.host}:{args.port}")
    devserver.serve(args.host, args.port)
    return 0


@command("dev")
def _dev(args: argparse.Namespace) -> int:
    from lib.web import auth, devserver

    source = "DATABASE_URL" if settings.database_url() else f"embedded PostgreSQL in {settings.data_dir() / 'pg'}"
    print(f"database: {source}")
    _migrate(args)
    _seed(args)
    base = f"http://{args.host}:{args.port}"
    os.environ.setdefault("NOFX_PUBLIC_URL", base)  # links in messages and signed URLs point here
    admin = auth.mint_token("admin", email="admin@nofx.local")
    print(f"\nconsole:     {base}/")
    print(f"admin token: {admin}\n")
    print("try:")
    print(
        f"  curl -s -H 'Authorization: Bearer {admin}' -X POST {base}/api/auto-planner/plan "
        "-H 'Content-Type: application/json' -d '{}'\n"
    )
    devserver.serve(args.host, args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lib.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("token", help="mint a local development token")
    tok.add_argument("--role", required=True, help="viewer, planner, approver, admin or service_role")
    tok.add_argument("--subject")
    tok.add_argument("--email")
    tok.add_argument("--ttl", type=int, default=12 * 3600, help="seconds (default 12 h)")
    pf = sub.add_parser("plan-file", help="plan a backlog JSON file and print the stages (no database)")
    pf.add_argument("file")
    pf.add_argument("--max-parallel", type=int, default=8)
    sub.add_parser("migrate", help="apply the migrations")
    sub.add_parser("seed", help="load supabase/seed.sql")
    sm = sub.add_parser("smoke", help="plan, gates, execute, approve by webhook, complete, audit: against a server")
    sm.add_argument("--surface", default="planner", help="what to exercise (planner)")
    sm.add_argument("--base-url", default="http://127.0.0.1:3000")
    sub.add_parser("audit-verify", help="verify the whole audit log and its snapshots")
    replay = sub.add_parser("audit-replay", help="step through a plan's audit history")
    replay.add_argument("plan_id")
    sub.add_parser("db-url", help="print the database URL in use")
    sub.add_parser("db-stop", help="stop the embedded PostgreSQL")
    sub.add_parser("routes", help="list the function routes")
    for name in ("serve", "dev"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        # PORT, as hosts and `vercel dev` name it; 3000 when unset
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 3000))
    args = parser.parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
