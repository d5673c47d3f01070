"""Cold import time of every api/ module, each in a fresh Python process.

A Vercel function pays its module's import on every cold start, so each
endpoint should import what its requests need and nothing more: within 1.3x of
the libraries it truly needs (psycopg + pydantic, plus networkx on the planning
and gate paths), under 300 ms, and never the LLM SDKs (they load only when a
plan compares models). Beside each module the same run measures that floor.

    python -m bench.cold_imports [--runs 7] [--no-bytecode] [--strict]

--no-bytecode compiles every module from source, as on Vercel: its bundles
ship no .pyc files and the function's file system is read-only. The exit
status is non-zero when a module fails to import or loads an LLM SDK; with
--strict also when one misses the time budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lib import settings
from lib.web import routes

# The floors: what every endpoint needs (a driver and its models; pydantic
# loads lazily, so the floor asks for BaseModel and Field, not just the package),
# and on the planning and gate paths the graph library too.
FLOOR = ("import psycopg", "from pydantic import BaseModel, Field")
FLOOR_WITH_GRAPHS = (*FLOOR, "import networkx")
# Routes whose requests build or evaluate plans: networkx is part of their floor.
GRAPH_ROUTES = ("/api/auto-planner/", "/api/gates/")
LLM_SDKS = ("openai", "anthropic")
BUDGET_MS = 300.0
BUDGET_RATIO = 1.3

# Runs in the fresh process. A target is either an api/ file, imported the way
# lib.routes.load() does (and Vercel's runtime does), or "code:..." for a floor.
CHILD = r"""
import importlib.util, json, sys, time
root, target, name = sys.argv[1:4]
sys.path.insert(0, root)
start = time.perf_counter()
if target.startswith("code:"):
    exec(target[5:])
else:
    spec = importlib.util.spec_from_file_location(name, target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "app", None)):
        raise SystemExit(f"{target} has no WSGI callable named app")
elapsed = time.perf_counter() - start
print(json.dumps({"import_s": elapsed, "modules": sorted(sys.modules)}))
"""


class ImportFailed(RuntimeError):
    pass


@dataclass
class Sample:
    import_s: float  # the import alone, measured inside the child
    process_s: float  # the whole process: interpreter start, import, exit
    packages: frozenset[str]  # top-level packages loaded, stdlib excluded


def _top_level_packages(modules: list[str]) -> frozenset[str]:
    tops = {name.partition(".")[0] for name in modules}
    return frozenset(t for t in tops if t not in sys.stdlib_module_names and not t.startswith("_"))


def floor_target(statements: tuple[str, ...]) -> str:
    return "code:" + "; ".join(statements)


def floor_label(statements: tuple[str, ...]) -> str:
    return " + ".join(s.split()[1] for s in statements)


def stdlib_only_bytecode(prefix: Path) -> None:
    """Compile the standard library (and nothing else) into a pycache prefix.

    A Vercel cold start finds the runtime's stdlib compiled but compiles every
    bundled package and project module from source: the bundle ships no .pyc
    and its file system is read-only. Runs pointed at this prefix with -B see
    the same: stdlib bytecode, nothing else, nothing written."""
    compile_stdlib = (
        "import compileall, re, sysconfig; "
        "excluded = re.compile(r'/(site-packages|test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip)/'); "
        # one worker: worker processes would not inherit the cache prefix
        "raise SystemExit(not compileall.compile_dir(sysconfig.get_paths()['stdlib'], quiet=1, rx=excluded))"
    )
    subprocess.run(
        [sys.executable, "-I", "-X", f"pycache_prefix={prefix}", "-c", compile_stdlib], check=True, timeout=300
    )


def import_in_fresh_process(target: str, name: str = "nofx_api_probe", pycache_prefix: Path | None = None) -> Sample:
    """Import one api/ file (or a floor's "code:...") in a new interpreter.

    With a pycache prefix the child reads bytecode only from there and writes
    none (see stdlib_only_bytecode)."""
    command = [sys.executable, "-I"]
    if pycache_prefix is not None:
        command += ["-B", "-X", f"pycache_prefix={pycache_prefix}"]
    command += ["-c", CHILD, str(settings.ROOT), target, name]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=settings.ROOT, capture_output=True, text=True, timeout=120, check=False)
    process_s = time.perf_counter() - start
    if done.returncode != 0:
        raise ImportFailed(f"{target}: exit {done.returncode}\n{done.stderr.strip()}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(report["import_s"], process_s, _top_level_packages(report["modules"]))


def llm_sdks_loaded(sample: Sample) -> list[str]:
    return [sdk for sdk in LLM_SDKS if sdk in sample.packages]


def floor_for(route: routes.Route) -> tuple[str, ...]:
    path = route.template + "/"
    return FLOOR_WITH_GRAPHS if path.startswith(GRAPH_ROUTES) else FLOOR


@dataclass
class Row:
    label: str
    samples: list[Sample]

    @property
    def import_ms(self) -> float:
        return statistics.median(s.import_s for s in self.samples) * 1000

    @property
    def process_ms(self) -> float:
        return statistics.median(s.process_s for s in self.samples) * 1000


def measure(runs: int, pycache_prefix: Path | None) -> tuple[dict[str, Row], dict[tuple[str, ...], Row], list[str]]:
    """Every module and both floors, `runs` times each, interleaved so that
    machine noise spreads over all of them alike."""
    api_routes = routes.discover()
    modules = {r.template: Row(str(r.file.relative_to(settings.ROOT)), []) for r in api_routes}
    floors: dict[tuple[str, ...], Row] = {f: Row(floor_label(f), []) for f in (FLOOR, FLOOR_WITH_GRAPHS)}
    failures: list[str] = []
    for _ in range(runs):
        for f, row in floors.items():
            row.samples.append(import_in_fresh_process(floor_target(f), pycache_prefix=pycache_prefix))
        for route in api_routes:
            row = modules[route.template]
            if row.label in failures:
                continue
            try:
                row.samples.append(import_in_fresh_process(str(route.file), route.module_name, pycache_prefix))
            except ImportFailed as exc:
                failures.append(row.label)
                print(f"IMPORT FAILED {exc}", file=sys.stderr)
    return modules, floors, failures


def report(runs: int, no_bytecode: bool, strict: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="nofx-pycache-") as prefix:
        if no_bytecode:
            stdlib_only_bytecode(Path(prefix))
        modules, floors, failures = measure(runs, Path(prefix) if no_bytecode else None)
    api_routes = {r.template: r for r in routes.discover()}
    mode = "packages compiled from source (no .pyc, as on Vercel)" if no_bytecode else "with the bytecode cache"
    print(f"Cold import per api module, fresh process each, median of {runs} runs, {mode}.")
    print("import ms: the import alone (measured in the child); process ms: the whole process.\n")
    print("| module | import ms | floor ms | ratio | process ms | LLM SDKs | beyond the floor |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    offenders: list[str] = []
    over_budget: list[str] = []
    for template, row in modules.items():
        if not row.samples:
            print(f"| {row.label} | failed | | | | | |")
            continue
        floor = floors[floor_for(api_routes[template])]
        ratio = row.import_ms / floor.import_ms
        sdks = sorted({sdk for s in row.samples for sdk in llm_sdks_loaded(s)})
        extra = sorted(row.samples[0].packages - floor.samples[0].packages - {"lib", "nofx_api"})
        if sdks:
            offenders.append(row.label)
        if row.import_ms > BUDGET_MS or ratio > BUDGET_RATIO:
            over_budget.append(row.label)
        print(
            f"| {row.label} | {row.import_ms:.0f} | {floor.import_ms:.0f} ({floor.label}) | {ratio:.2f}x "
            f"| {row.process_ms:.0f} | {', '.join(sdks) or 'none'} | {', '.join(extra) or '-'} |"
        )
    startup = statistics.median(s.process_s - s.import_s for r in floors.values() for s in r.samples) * 1000
    print(f"\nInterpreter start and exit, outside the import: ~{startup:.0f} ms per process.")
    print(f"Budget: under {BUDGET_MS:.0f} ms and within {BUDGET_RATIO}x of the floor.")
    if over_budget:
        print("Over budget: " + ", ".join(over_budget))
    if offenders:
        print("LLM SDK loaded at import (must only load when models are compared): " + ", ".join(offenders))
    if failures:
        print("Failed to import: " + ", ".join(failures))
    return 1 if failures or offenders or (strict and over_budget) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-bytecode", action="store_true", help="compile from source, as a Vercel cold start does")
    parser.add_argument("--strict", action="store_true", help="also fail when a module misses the time budget")
    args = parser.parse_args(argv)
    return report(args.runs, args.no_bytecode, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
