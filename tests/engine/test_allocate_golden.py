"""Golden cycles: small inputs with statements computed by hand (see each file's "working")."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from royalties.engine.allocate import INPUT_COLUMNS, CycleInputs, PolicyParams, allocate
from tests.engine.reference import exact_buckets, result_buckets

GOLDEN = sorted((Path(__file__).parent.parent / "data" / "engine").glob("*.json"))


def load(path: Path) -> tuple[CycleInputs, PolicyParams, dict]:
    case = json.loads(path.read_text())
    frames = {}
    for name, dtypes in INPUT_COLUMNS.items():
        rows = case["inputs"][name]
        frame = pd.DataFrame(rows, columns=list(dtypes))
        frames[name] = frame.astype(dtypes)
    return CycleInputs(**frames), PolicyParams(**case["policy"]), case["expected"]


def records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_cycle_matches_the_hand_computation(path):
    inputs, policy, expected = load(path)
    result = allocate(inputs, policy)
    for name in ("holders", "lines_by_work", "lines_by_source", "suspense", "fees", "licences"):
        assert records(getattr(result, name)) == expected[name], name
    assert result.totals == expected["totals"]
    # The hand computation agrees with the exact reference too (each bucket within 1 unit).
    exact, got = exact_buckets(inputs, policy), result_buckets(result)
    assert all(abs(got.get(k, 0) - exact.get(k, 0)) <= 1 for k in set(exact) | set(got))


def test_there_are_golden_cycles():
    assert len(GOLDEN) >= 2
