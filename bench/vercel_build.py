"""make vercel-build: the real `vercel build`, then check what it produced.

1. The pinned Vercel CLI (npm) and uv, installed into .vercel-cli/, which the
   project owns and git ignores.
2. A staged copy of the working tree as a deployment sees it (tracked and
   untracked files git does not ignore, minus .vercelignore), in
   .vercel-cli/stage. Why not build in place: `vercel build` writes uv.lock and
   .vercel/ into the folder it builds, and locally its Python builder bundles
   every file of that folder (.data, .hypothesis ...) because it reads
   .vercelignore only on Vercel's machines, where ignored files never arrive.
3. .vercel/project.json, then `vercel build`, offline (uv fetches the pinned
   wheels from PyPI).
4. Checks on .vercel/output, each failure printed, exit status 1 if any:
   every api/**/*.py (lib.routes rules) is a function reached at its route,
   dynamic segments included; no other function; runtime and limits as in
   vercel.json; each bundle under Vercel's size limit and without the builder's
   run-time install fallback; the files lib reads at run time in every bundle
   and no dev-only files; static output only from public/; every cron path
   reaches a function; and every bundle, copied out on its own, imports its
   module through Vercel's runtime, /api/openapi answering a real request.

    python -m bench.vercel_build [--keep-bundles]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import settings
from lib.web import routes

VERCEL_CLI = "50.44.0"  # npm `vercel`, major 50 (the version the build was validated with)
UV = "0.10.11"  # the uv that @vercel/python 6.29 (inside vercel 50.44) pins as UV_VERSION

# Vercel's limit on a Python function's unzipped bundle: 500 MB ("the standard
# maximum uncompressed size is 250 MB ... or 500 MB uncompressed for Python",
# https://vercel.com/kb/guide/troubleshooting-function-250mb-limit; changelog
# "Python Vercel Functions bundle size limit increased to 500MB").
SIZE_LIMIT_MB = 500
# Above 245 MiB @vercel/python (LAMBDA_SIZE_THRESHOLD_BYTES) stops bundling the
# public packages and installs them with uv in /tmp at the first cold start.
RUNTIME_INSTALL_THRESHOLD_MB = 245 * 1024 * 1024 / 1e6
MB = 1e6
BUILD_TIMEOUT_S = 600  # a cold build takes about a minute here; CI must not hang on a stuck one

ROOT = settings.ROOT
WORK = ROOT / ".vercel-cli"
STAGE = WORK / "stage"
BUNDLES = WORK / "bundles"
OUTPUT = STAGE / ".vercel" / "output"
PROJECT_JSON = {"projectId": "prj_local", "orgId": "team_local", "settings": {"framework": None}}

# Read at run time by lib (migrations and prelude, Rego policies) and by the
# OpenAPI document (every api/ module): each bundle must carry them.
RUNTIME_TREES = ("api/", "lib/", "supabase/")
DEV_ONLY = ("tests/", "bench/", ".data/", ".ci/", ".venv/", ".vercel-cli/", ".hypothesis/", "examples/")

# Runs inside a bundle copied out on its own, as Lambda runs it: the task root
# on sys.path, the site-packages of no environment (-S), PYTHONPATH=_vendor.
PROBE = r"""
import base64, json, sys
import vc__handler__python as entry
path = sys.argv[1]
event = {"body": json.dumps({"method": "GET", "path": path, "headers": {"host": "probe.local"}})}
response = entry.vc_handler(event, None)
body = response.get("body") or ""
if response.get("encoding") == "base64":
    body = base64.b64decode(body).decode("utf-8", "replace")
print(json.dumps({"status": response["statusCode"], "body": body}))
"""


class BuildFailed(RuntimeError):
    pass


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # per function, for the table
    timings: dict[str, float] = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok


@contextmanager
def timed(report: Report, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.timings[step] = time.perf_counter() - start


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, text=True, capture_output=True, check=False, **kwargs)


# ------------------------------------------------------------------ tools ----


def ensure_vercel_cli() -> Path:
    binary = WORK / "node_modules" / ".bin" / "vercel"
    manifest = WORK / "node_modules" / "vercel" / "package.json"
    if not (manifest.exists() and json.loads(manifest.read_text())["version"] == VERCEL_CLI):
        WORK.mkdir(exist_ok=True)
        done = run(["npm", "install", "--prefix", str(WORK), "--save-exact", "--no-audit", "--no-fund",
                    f"vercel@{VERCEL_CLI}"])  # fmt: skip
        if done.returncode != 0:
            raise BuildFailed(f"npm install vercel@{VERCEL_CLI} failed:\n{done.stderr[-3000:]}")
    return binary


def ensure_uv() -> Path:
    target = WORK / "uv"
    binary = target / "bin" / "uv"
    if not (binary.exists() and run([str(binary), "--version"]).stdout.split()[1:2] == [UV]):
        shutil.rmtree(target, ignore_errors=True)
        done = run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), f"uv=={UV}"])  # fmt: skip
        if done.returncode != 0:
            raise BuildFailed(f"pip install uv=={UV} failed:\n{done.stderr[-3000:]}")
    return binary


def python_dirs() -> list[str]:
    """Where the builder finds python3.X for .python-version (it runs `python3.12`)."""
    wanted = "python" + (ROOT / ".python-version").read_text().strip()
    if shutil.which(wanted):
        return []
    base = Path(sys.base_prefix) / "bin"
    if (base / wanted).exists():
        return [str(base)]
    raise BuildFailed(f"{wanted} is not on PATH: the Vercel Python builder needs it")


# ------------------------------------------------------------------ stage ----


def _git_files(cwd: Path, *args: str) -> list[str]:
    done = run(["git", "ls-files", "-z", *args], cwd=cwd)
    if done.returncode != 0:
        raise BuildFailed(f"git ls-files {' '.join(args)}: {done.stderr}")
    return [p for p in done.stdout.split("\0") if p]


def stage_tree() -> int:
    """Copy what a deployment would upload into STAGE; returns the file count."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    for rel in _git_files(ROOT, "--cached", "--others", "--exclude-standard"):
        source = ROOT / rel
        if source.is_file():  # a tracked file deleted in the working tree is gone
            (STAGE / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, STAGE / rel)
    # .vercelignore has gitignore syntax: let git match it, in a throwaway repo.
    if (STAGE / ".vercelignore").exists():
        run(["git", "init", "-q"], cwd=STAGE)
        for rel in _git_files(STAGE, "--others", "--ignored", "--exclude-from=.vercelignore"):
            (STAGE / rel).unlink()
        shutil.rmtree(STAGE / ".git")
    return sum(1 for p in STAGE.rglob("*") if p.is_file())


# ------------------------------------------------------------------ build ----


def vercel_build(cli: Path, uv: Path) -> None:
    (STAGE / ".vercel").mkdir(exist_ok=True)
    (STAGE / ".vercel" / "project.json").write_text(json.dumps(PROJECT_JSON))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(uv.parent), *python_dirs(), os.environ.get("PATH", "")]),
        "NO_UPDATE_NOTIFIER": "1",  # no registry call for the update banner
        "VERCEL_TELEMETRY_DISABLED": "1",
    }
    env.pop("VIRTUAL_ENV", None)  # the builder makes its own venv under .vercel/python
    log = WORK / "build.log"
    try:
        with log.open("w") as out:
            done = subprocess.run([str(cli), "build", "--yes"], cwd=STAGE, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, check=False, timeout=BUILD_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"`vercel build` took over {BUILD_TIMEOUT_S} s (log: {log})") from exc
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise BuildFailed(f"`vercel build` exited {done.returncode} (full log: {log}):\n{tail}")


# ----------------------------------------------------------------- checks ----


@dataclass(frozen=True)
class Function:
    name: str  # "api/plans/[planId]"
    config: dict[str, Any]

    @property
    def directory(self) -> Path:
        return OUTPUT / "functions" / f"{self.name}.func"

    def files(self) -> dict[str, Path]:
        """Bundle path -> file on disk: the builder's filePathMap (paths in the
        stage, not copied locally) plus what lies in the .func folder itself."""
        mapped = {dest: STAGE / src for dest, src in self.config.get("filePathMap", {}).items()}
        for path in self.directory.rglob("*"):
            if path.is_file() and path.name != ".vc-config.json":
                mapped[str(path.relative_to(self.directory))] = path
        return mapped


def built_functions() -> dict[str, Function]:
    found = {}
    for config in sorted((OUTPUT / "functions").rglob(".vc-config.json")):
        name = str(config.parent.relative_to(OUTPUT / "functions")).removesuffix(".func")
        found[name] = Function(name, json.loads(config.read_text()))
    return found


def _python_regex(source: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\(\?<(?![=!])", "(?P<", source))  # JS named groups


def _substitute(dest: str, match: re.Match[str]) -> str:
    def group(m: re.Match[str]) -> str:
        key = m.group(1)
        value = match.group(int(key)) if key.isdigit() else match.group(key)
        return value or ""

    return re.sub(r"\$(\d+|[A-Za-z_]\w*)", group, dest)


def resolve(path: str, config: dict[str, Any], functions: dict[str, Function]) -> tuple[str | None, str]:
    """Follow config.json's routes for a GET of `path` as Vercel's router does
    up to the first function hit: the filesystem, then the rewrites that
    `check` it. Returns (function name or None, query string)."""

    def filesystem(p: str) -> str | None:
        name = p.strip("/")
        return next((n for n in (name, f"{name}/index") if n in functions), None)

    phase = None
    for route in config.get("routes", []):
        if "handle" in route:
            phase = route["handle"]
            if phase == "filesystem" and (hit := filesystem(path)):
                return hit, ""
            continue
        if phase not in (None, "filesystem"):
            break  # error and miss phases: the request did not reach a function
        match = _python_regex(route["src"]).match(path)
        if not match or route.get("continue"):
            continue
        if "dest" in route:
            target, _, query = _substitute(route["dest"], match).partition("?")
            if hit := filesystem(target):
                return hit, query
            path = target
        elif "status" in route:
            return None, f"status {route['status']}"
    return None, ""


def check_routes(report: Report, functions: dict[str, Function]) -> None:
    config = json.loads((OUTPUT / "config.json").read_text())
    expected = {str(r.file.relative_to(STAGE).with_suffix("")): r for r in routes.discover(STAGE / "api")}
    report.check(
        set(functions) == set(expected),
        f"functions built {sorted(functions)} != api files {sorted(expected)}",
    )
    for name, route in expected.items():
        sample = route.template
        for param in route.params:
            sample = sample.replace("{" + param + "}", f"sample-{param}")
        hit, query = resolve(sample, config, functions)
        wanted_query = "&".join(f"{p}=sample-{p}" for p in route.params)
        report.check(
            hit == name and query == wanted_query,
            f"GET {sample} reaches {hit or 'no function'} ({query or 'no query'}), expected {name} ({wanted_query})",
        )
    # the console's page and settings come from functions (their CSP names
    # the configured Supabase host), never from a static file
    console = {"/": "api/console/index", "/index.html": "api/console/index", "/config.json": "api/console/config"}
    for path, name in console.items():
        hit, _ = resolve(path, config, functions)
        report.check(hit == name, f"GET {path} reaches {hit or 'no function'}, expected {name}")
    for cron in config.get("crons", []):
        hit, _ = resolve(cron["path"], config, functions)
        report.check(hit is not None, f"cron {cron['path']} ({cron['schedule']}) reaches no function")


def check_function_config(report: Report, functions: dict[str, Function]) -> None:
    runtime = "python" + (ROOT / ".python-version").read_text().strip()
    wanted = json.loads((ROOT / "vercel.json").read_text()).get("functions", {}).get("api/**/*.py", {})
    for fn in functions.values():
        got = fn.config.get("runtime")
        report.check(got == runtime, f"{fn.name}: runtime {got}, not {runtime}")
        for key in ("maxDuration", "memory"):
            if key in wanted:
                got = fn.config.get(key)
                report.check(got == wanted[key], f"{fn.name}: {key} {got}, vercel.json says {wanted[key]}")


def check_bundles(report: Report, functions: dict[str, Function]) -> None:
    runtime_files = {
        str(p.relative_to(STAGE))
        for tree in RUNTIME_TREES
        for p in (STAGE / tree).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    for fn in functions.values():
        files = fn.files()
        size_mb = sum(p.stat().st_size for p in files.values()) / MB
        missing = sorted(runtime_files - files.keys())
        dev = sorted(f for f in files if f.startswith(DEV_ONLY))
        report.check(size_mb < SIZE_LIMIT_MB, f"{fn.name}: {size_mb:.1f} MB unzipped, over {SIZE_LIMIT_MB} MB")
        report.check(
            not any(f.startswith("_uv/") for f in files),
            f"{fn.name}: over {RUNTIME_INSTALL_THRESHOLD_MB:.0f} MB: packages deferred to a run-time install",
        )
        report.check(not missing, f"{fn.name}: bundle lacks files read at run time: {missing[:10]}")
        report.check(not dev, f"{fn.name}: bundle carries dev-only files: {dev[:10]}")
        route = "/" + re.sub(r"\[(\w+)\]", r":\1", fn.name).removesuffix("/index")
        report.rows[fn.name] = {"route": route, "files": len(files), "mb": size_mb, "answer": "not probed"}


def check_static(report: Report) -> None:
    """Only public/ may be served as static files; anything else published
    there (the source, migrations, Makefile) is a leak."""
    static = OUTPUT / "static"
    public = STAGE / "public"
    leaked = sorted(
        str(p.relative_to(static))
        for p in static.rglob("*")
        if p.is_file() and not (public / p.relative_to(static)).is_file()
    )
    report.check(
        not leaked,
        f"{len(leaked)} files outside public/ are served as static files, e.g. {leaked[:6]} "
        "(Vercel publishes the project root when public/ holds no file)",
    )


def _sample_path(fn: Function) -> str:
    return "/" + re.sub(r"\[(\w+)\]", r"sample-\1", fn.name).removesuffix("/index")


def _probe(fn: Function, keep: bool) -> subprocess.CompletedProcess[str]:
    """Copy one bundle out on its own (hard links) and load it the way Lambda
    does: the task root as working directory and on sys.path, no site-packages
    (-S), the function's environment (PYTHONPATH=_vendor), VERCEL set."""
    bundle = BUNDLES / fn.name.replace("/", "__")
    for dest, source in fn.files().items():
        (bundle / dest).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, bundle / dest)
        except OSError:
            shutil.copy2(source, bundle / dest)
    python = STAGE / ".vercel" / "python" / ".venv" / "bin" / "python"
    env = {"PATH": os.environ.get("PATH", ""), "VERCEL": "1", "PYTHONDONTWRITEBYTECODE": "1",
           **fn.config.get("environment", {})}  # fmt: skip
    try:
        return run([str(python), "-S", "-s", "-c", PROBE, _sample_path(fn)], cwd=bundle, env=env, timeout=180)
    finally:
        if not keep:
            shutil.rmtree(bundle)


def probe_bundles(report: Report, functions: dict[str, Function], keep: bool) -> None:
    """Every bundle loads its module through Vercel's runtime and answers an
    unauthenticated GET without a 404 or a 500; /api/openapi answers 200 with
    every route in its document."""
    shutil.rmtree(BUNDLES, ignore_errors=True)
    templates = {r.template for r in routes.discover(STAGE / "api")}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda fn: (fn, _probe(fn, keep)), functions.values()))
    for fn, done in results:
        route = _sample_path(fn)
        if not report.check(done.returncode == 0, f"{fn.name}: the bundle alone fails to load:\n{done.stderr[-2000:]}"):
            continue
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        report.rows[fn.name]["answer"] = f"GET {route}: {answer['status']}"
        report.check(
            answer["status"] not in (404, 500),
            f"{fn.name}: GET {route} through the runtime answered {answer['status']}: {answer['body'][:300]}",
        )
        if fn.name == "api/openapi" and report.check(answer["status"] == 200, "GET /api/openapi did not answer 200"):
            paths = set(json.loads(answer["body"]).get("paths", {}))
            report.check(paths == templates, f"the bundled OpenAPI document lists {sorted(paths)}")


# ------------------------------------------------------------------- main ----


def print_report(report: Report, build_s: float) -> None:
    print(f"\nvercel@{VERCEL_CLI}, uv {UV}; output: {OUTPUT.relative_to(ROOT)}")
    print(f"\n| function | route | files | unzipped MB | under {SIZE_LIMIT_MB} MB | bundle alone, unauthenticated |")
    print("| --- | --- | ---: | ---: | --- | --- |")
    for name, row in report.rows.items():
        verdict = "yes" if row["mb"] < SIZE_LIMIT_MB else "NO"
        print(f"| {name} | {row['route']} | {row['files']} | {row['mb']:.1f} | {verdict} | {row['answer']} |")
    print("\n" + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in report.timings.items()))
    print(f"total {build_s:.1f} s")
    if report.problems:
        print(f"\n{len(report.problems)} problem(s):")
        for problem in report.problems:
            print(f"  - {problem}")
    else:
        print("\nall checks passed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-bundles", action="store_true", help=f"keep the copied-out bundles in {BUNDLES}")
    args = parser.parse_args(argv)
    report = Report()
    start = time.perf_counter()
    try:
        with timed(report, "tools"):
            cli, uv = ensure_vercel_cli(), ensure_uv()
        with timed(report, "stage"):
            staged = stage_tree()
        print(f"staged {staged} files in {STAGE.relative_to(ROOT)}; running vercel build ...", flush=True)
        with timed(report, "vercel build"):
            vercel_build(cli, uv)
        with timed(report, "checks"):
            functions = built_functions()
            check_routes(report, functions)
            check_function_config(report, functions)
            check_bundles(report, functions)
            check_static(report)
        with timed(report, "bundle probes"):
            probe_bundles(report, functions, args.keep_bundles)
    except BuildFailed as exc:
        report.problems.append(str(exc))
    print_report(report, time.perf_counter() - start)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
