"""Rounding exact amounts to minor units, once, without losing or inventing a cent.

Exact amounts are rationals `numerator / denominator` over one shared denominator. The
largest-remainder method gives each part its floor, then hands the units still missing from the
total to the parts with the largest remainders; ties go to the smallest key, so the result
depends only on the amounts and the keys, never on input order. Every part ends within one
minor unit of its exact amount and the parts sum exactly to the total; if they cannot (the
inputs do not add up), `RoundingError` is raised — a real exception, never an `assert`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


class RoundingError(ArithmeticError):
    """The inputs cannot be rounded to the stated total (a bug upstream, never ignored)."""


def largest_remainder(
    numerators: Sequence[int],
    denominator: int,
    total: int,
    keys: Sequence[Hashable] | None = None,
    max_shortfall: int | None = None,
) -> list[int]:
    """Round `numerators[i] / denominator` to integers summing exactly to `total`.

    The exact parts must add up to `total` (sum(numerators) == total * denominator), or fall
    short by less than one numerator unit per part, which is what truncating each part at a
    fine fixed-point scale upstream can cost. Keys (default: positions) break ties between
    equal remainders: smallest key first. `max_shortfall` widens the tolerated shortfall (in
    numerator units) when the caller knows its parts were truncated more than once each, e.g.
    a licence's few parts summed from many truncated rows; it must stay below `denominator`.
    """
    if denominator <= 0:
        raise RoundingError("the denominator must be positive")
    if keys is None:
        keys = range(len(numerators))
    if len(keys) != len(numerators):
        raise RoundingError("one key per part")
    if any(n < 0 for n in numerators):
        raise RoundingError("exact parts are never negative")
    floors, remainders = [], []
    for n in numerators:
        q, r = divmod(n, denominator)
        floors.append(q)
        remainders.append(r)
    shortfall = total * denominator - sum(numerators)  # in numerator units
    if shortfall < 0:
        raise RoundingError("the exact parts add up to more than the total")
    allowed = max(len(numerators), 1) if max_shortfall is None else max_shortfall + 1
    if max_shortfall is not None and max_shortfall >= denominator:
        raise RoundingError("a shortfall of a whole unit or more is never truncation")
    if shortfall >= allowed:
        raise RoundingError(
            f"parts of {sum(numerators)}/{denominator} fall short of {total}: "
            "more than truncation at a fine scale could explain"
        )
    missing = total - sum(floors)
    order = sorted(range(len(numerators)), key=lambda i: (-remainders[i], keys[i]))
    for i in order[:missing]:
        floors[i] += 1
    if sum(floors) != total:  # unreachable by construction; kept as the stated post-condition
        raise RoundingError("rounded parts do not sum to the total")
    return floors


def split(total: int, weights: Sequence[int], keys: Sequence[Hashable] | None = None) -> list[int]:
    """Split an integer amount in proportion to integer weights, exactly (largest remainder).

    Used wherever one amount becomes many (a holder's total into statement lines, a work's
    amount over its holders): `split(100, [1, 1, 1]) == [34, 33, 33]`.
    """
    if total < 0:
        raise RoundingError("only non-negative amounts are split")
    if any(w < 0 for w in weights):
        raise RoundingError("weights are never negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise RoundingError("nothing to split by: all weights are zero")
    return largest_remainder([total * w for w in weights], weight_sum, total, keys)
