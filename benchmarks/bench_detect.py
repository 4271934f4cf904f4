"""Cost of detect + validate + map per shot, with the 3 built-in camera types and with 50.

The detector must not slow down as types are registered: with 50 types a shot may cost at
most twice what it costs with 3. The 47 extra types are generated schema documents with
their own key names, in the three layout styles of camerus1-3, and go through parse_schema
and compile_schema like any user's schema.

    python benchmarks/bench_detect.py --shots 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lizardctl.core.schema import (
    CompiledSchema,
    TypeDetector,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
    parse_schema,
)

EXAMPLES = Path(__file__).parents[1] / "tests" / "fixtures" / "schemas" / "design_examples.json"
T = TypeVar("T")
CAMERA = "104fc08a-efb6-427f-9193-2d54e4ed3e12"
VIOLATION = "de163a57-fd92-47a6-9b78-82bb0d41be71"


def synthetic(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Schema document number ``i`` and a valid shot for it; every third style repeats."""
    p = f"v{i}_"
    letters = {"type": "string", "pattern": "^[A-Z]{3}$"}
    digits = {"type": "string", "pattern": "^[0-9]{3}$"}
    region = {"type": "string", "pattern": "^[0-9]{2,3}$"}
    skill = {"type": "int", "ge": 1, "le": 100}
    if i % 3 == 0:
        layout: dict[str, Any] = {
            f"{p}chars": letters,
            f"{p}numbers": digits,
            f"{p}region": region,
            f"{p}camera": "uuid",
            f"{p}violation": "uuid",
            f"{p}value": "string",
            f"{p}skill": skill,
            f"{p}at": "datetime",
        }
        plate = [f"{p}numbers[:1]", f"{p}chars", f"{p}numbers[1:]", f"{p}region"]
        mapping: dict[str, Any] = {
            "plate": {"concat": plate},
            "camera_id": f"{p}camera",
            "violation_id": f"{p}violation",
            "violation_value": f"{p}value",
            "skill": f"{p}skill",
            "occurred_at": f"{p}at",
        }
        shot: dict[str, Any] = {
            f"{p}chars": "ABC",
            f"{p}numbers": "123",
            f"{p}region": "77",
            f"{p}camera": CAMERA,
            f"{p}violation": VIOLATION,
            f"{p}value": "62km/h",
            f"{p}skill": 1,
            f"{p}at": "2024-01-01T00:00:00+00:00",
        }
    elif i % 3 == 1:
        parts = ("year", "month", "day", "hour", "minute", "second")
        layout = {
            f"{p}plate": {
                "type": "object",
                "fields": {"chars": letters, "numbers": digits, "region": region},
            },
            f"{p}ids": {"type": "object", "fields": {"camera": "uuid", "violation": "uuid"}},
            f"{p}value": "string",
            f"{p}skill": {"type": "object", "fields": {"value": skill}},
            f"{p}when": {
                "type": "object",
                "fields": {**dict.fromkeys(parts, "int"), "offset": "string"},
            },
        }
        plate = [
            f"{p}plate.numbers[:1]",
            f"{p}plate.chars",
            f"{p}plate.numbers[1:]",
            f"{p}plate.region",
        ]
        mapping = {
            "plate": {"concat": plate},
            "camera_id": f"{p}ids.camera",
            "violation_id": f"{p}ids.violation",
            "violation_value": f"{p}value",
            "skill": f"{p}skill.value",
            "occurred_at": {
                "parts": {**{k: f"{p}when.{k}" for k in parts}, "offset": f"{p}when.offset"}
            },
        }
        shot = {
            f"{p}plate": {"chars": "ABC", "numbers": "123", "region": "77"},
            f"{p}ids": {"camera": CAMERA, "violation": VIOLATION},
            f"{p}value": "62km/h",
            f"{p}skill": {"value": 1},
            f"{p}when": {**dict.fromkeys(parts, 1), "year": 2024, "hour": 0, "offset": "+00:00"},
        }
    else:
        layout = {
            f"{p}plate": {"type": "string", "pattern": "^[0-9][A-Z]{3}[0-9]{4,5}$"},
            f"{p}camera": {"type": "object", "fields": {"id": "uuid"}},
            f"{p}violation": {"type": "object", "fields": {"id": "uuid", "value": "string"}},
            f"{p}skill": skill,
            f"{p}ts": {"type": "int", "ge": 0},
        }
        mapping = {
            "plate": f"{p}plate",
            "camera_id": f"{p}camera.id",
            "violation_id": f"{p}violation.id",
            "violation_value": f"{p}violation.value",
            "skill": f"{p}skill",
            "occurred_at": {"epoch_millis": f"{p}ts"},
        }
        shot = {
            f"{p}plate": "1ABC2377",
            f"{p}camera": {"id": CAMERA},
            f"{p}violation": {"id": VIOLATION, "value": "62km/h"},
            f"{p}skill": 1,
            f"{p}ts": 1_704_067_200_000,
        }
    return {"layout": layout, "mapping": mapping}, shot


def per_shot_us(work: Callable[[T], object], items: list[T], n: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``n`` calls, cycling through ``items``: µs per call."""
    batch = [items[i % len(items)] for i in range(n)]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in batch:
            work(item)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shots", type=int, default=20_000, help="shots per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts")
    parser.add_argument("--types", type=int, default=50, help="camera types in the large set")
    args = parser.parse_args()

    builtins: list[CompiledSchema] = [
        compile_schema(name, 1, load_schema_file(path))
        for name, path in builtin_schema_files().items()
    ]
    generated = [synthetic(i) for i in range(args.types - len(builtins))]
    extra = [
        compile_schema(f"synthetic{i}", 1, parse_schema(json.dumps(doc)))
        for i, (doc, _) in enumerate(generated)
    ]
    design_shots = list(json.loads(EXAMPLES.read_text()).values())
    small = TypeDetector(builtins)
    large = TypeDetector([*builtins, *extra])

    known = [(large.detect(raw), raw) for raw in design_shots]
    synthetic_shots = [shot for _, shot in generated]
    n, repeat = args.shots, args.repeat
    total = len(builtins) + len(extra)
    rows = [
        ("to_case alone, type known", per_shot_us(lambda p: p[0].to_case(p[1]), known, n, repeat)),
        (
            f"detector.case, {len(builtins)} types, built-in shots",
            per_shot_us(small.case, design_shots, n, repeat),
        ),
        (
            f"detector.case, {total} types, built-in shots",
            per_shot_us(large.case, design_shots, n, repeat),
        ),
        (
            f"detector.case, {total} types, synthetic shots",
            per_shot_us(large.case, synthetic_shots, n, repeat),
        ),
    ]
    for label, micros in rows:
        print(f"{label:<52} {micros:7.2f} µs/shot")
    print(f"{total} types / {len(builtins)} types, built-in shots: {rows[2][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
