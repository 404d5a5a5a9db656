"""How many examples each property of the engine explores.

Every `allocate` costs about 0.1 s of DuckDB statement overhead even on tiny frames, and the
multi-run properties (row order, repeated cycles, map and reduce) call it two to six times per
example. The README's test run (`scripts/test`) explores ``QUICK`` examples per property so the
whole suite stays within minutes on 2 cores; CI then runs ``tests/engine`` again with
``BLANKET_PROPERTY_EXAMPLES=1000`` (`.ci/run`, step "engine properties"), so that every property
is checked on at least 1,000 examples in CI, derandomized (the same examples every run).
"""

from __future__ import annotations

import os

QUICK = 100


def examples(quick: int = QUICK, *, most: int | None = None) -> int:
    """The examples for one property: ``BLANKET_PROPERTY_EXAMPLES`` when set (at most
    ``most``, for a check that is not one of the engine's listed properties), else ``quick``."""
    configured = os.environ.get("BLANKET_PROPERTY_EXAMPLES", "").strip()
    if not configured:
        return quick
    return min(int(configured), most) if most is not None else int(configured)
