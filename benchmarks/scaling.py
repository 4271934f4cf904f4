"""Scaling on PostgreSQL: N ``lizardctl ingest`` processes started together on one dump.

Each process runs with ``--workers 1`` so that N processes use N cores' worth of workers,
as N single-core hosts would; they share the dump through database claims. For every N
the schema is fresh; the table shows wall time from the first start to the last exit,
shots/s, the speed-up over one process, and each process's share of the shots. Every
row is checked: the cases must be exactly the dump's valid shots, each once.

Usage: python benchmarks/scaling.py --pg postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
           [--shots 20000 | --dump DIR] [--processes 1 2 4] [--workers-per-process 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from gen_dump import EXPECTED_FILE, generate
from run import LIZARDCTL, pg_schema, run_quiet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", required=True, help="PostgreSQL URL")
    parser.add_argument("--shots", type=int, default=20_000)
    parser.add_argument("--dump", type=Path, help="reuse a gen_dump.py --out folder")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--workers-per-process", type=int, default=1)
    parser.add_argument(
        "--store-root",
        type=Path,
        help="where the photo stores go (e.g. /dev/shm to take this disk out of the picture)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lizard-scaling-") as tmp:
        work = Path(tmp)
        dump = args.dump or work / "dump"
        if args.dump is None:
            generate(dump, shots=args.shots, cameras=100)
        expected = json.loads((dump / EXPECTED_FILE).read_text())["expected"]
        subprocess.run(["sync"], check=False)
        rows = [measure(args, dump, work, n, expected) for n in args.processes]
    base = rows[0]["seconds"] * rows[0]["processes"]
    print("| processes | seconds | shots/s | speed-up vs 1 | CPU busy | I/O wait | shares |")
    print("|--:|--:|--:|--:|--:|--:|---|")
    for row in rows:
        speedup = base / row["seconds"] / rows[0]["processes"]
        shares = " / ".join(f"{s:.0%}" for s in row["shares"])
        print(
            f"| {row['processes']} | {row['seconds']:.2f} | {row['shots_per_s']:,.0f} "
            f"| {speedup:.2f}x | {row['busy']:.0%} | {row['iowait']:.0%} | {shares} |"
        )


def machine_cpu() -> tuple[float, float, float]:
    """Seconds of CPU the whole machine spent busy, idle, and idle waiting for the disk
    (/proc/stat): PostgreSQL and every lizardctl process included."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (idle + iowait) / tick, iowait / tick


def measure(
    args: argparse.Namespace, dump: Path, work: Path, n: int, expected: dict[str, int]
) -> dict[str, Any]:
    store_root = (args.store_root or work) / f"lizard-store-{n}-{time.time_ns()}"
    with pg_schema(args.pg) as url:
        for step in (["db", "upgrade"], ["camera", "import", str(dump / "cameras.csv")]):
            done = run_quiet([*LIZARDCTL, "--db", url, *step], work, {})
            if done.returncode:
                raise SystemExit(f"{' '.join(step)} failed: {done.stderr}")
        command = [
            *LIZARDCTL,
            "--db",
            url,
            "ingest",
            str(dump / "dump"),
            "--settle",
            "0",
            "--json",
            "--workers",
            str(args.workers_per_process),
            "--store",
            str(store_root),
        ]
        started = time.perf_counter()
        before = machine_cpu()
        processes = [
            subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, text=True) for _ in range(n)
        ]
        summaries = [json.loads(p.communicate()[0]) for p in processes]
        seconds = time.perf_counter() - started
        busy, idle, iowait = (a - b for a, b in zip(machine_cpu(), before, strict=True))
        shutil.rmtree(store_root, ignore_errors=True)
        count = run_quiet(
            [*LIZARDCTL, "--db", url, "cases", "list", "--limit", "1", "--json"], work, {}
        )
        cases = json.loads(count.stdout)["total"]  # counted by the database
    if cases != expected["ingested"] or sum(s["ingested"] for s in summaries) != cases:
        raise SystemExit(f"{n} processes: {cases} cases, expected {expected['ingested']}")
    shots = sum(s["shots"] for s in summaries)
    return {
        "processes": n,
        "seconds": seconds,
        "shots_per_s": shots / seconds,
        "shares": [s["shots"] / shots for s in summaries],
        "busy": busy / (busy + idle),
        "iowait": iowait / (busy + idle),
    }


if __name__ == "__main__":
    main()
