"""Revenue recognition: daily pro rata over the term, with nothing lost or invented."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from royalties.services.recognition import _in_period, recognised_to


def _quarters(first: dt.date, last: dt.date):
    start = dt.date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
    while start <= last:
        month = start.month + 3
        following = dt.date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
        yield start, following - dt.timedelta(days=1)
        start = following


@settings(max_examples=1000)
@given(
    amount=st.integers(min_value=0, max_value=10**13),
    start=st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)),
    days=st.integers(min_value=1, max_value=3 * 366),
)
def test_periods_of_a_term_add_up_to_exactly_what_was_collected(amount, start, days):
    licence = SimpleNamespace(starts_on=start, ends_on=start + dt.timedelta(days=days - 1))
    recognised, parts = 0, []
    for q_start, q_end in _quarters(licence.starts_on, licence.ends_on):
        part = _in_period(licence, amount, recognised, q_start, q_end)
        assert part >= 0
        # Within one minor unit of the exact daily pro rata share of the quarter.
        overlap = (min(q_end, licence.ends_on) - max(q_start, licence.starts_on)).days + 1
        if q_end < licence.ends_on:
            assert abs(part * days - amount * overlap) < days
        recognised += part
        parts.append(part)
    assert recognised == amount


def test_a_quarter_of_a_year_long_licence_is_its_days():
    term = {
        "amount_minor": 365_000,
        "starts_on": dt.date(2026, 7, 1),
        "ends_on": dt.date(2027, 6, 30),
    }
    assert recognised_to(**term, through=dt.date(2026, 9, 30)) == 92_000
    assert recognised_to(**term, through=dt.date(2026, 6, 30)) == 0  # before the term
    assert recognised_to(**term, through=dt.date(2028, 1, 1)) == 365_000  # after it


def test_a_true_up_paid_mid_term_is_recognised_by_the_end_of_the_term():
    licence = SimpleNamespace(starts_on=dt.date(2026, 7, 1), ends_on=dt.date(2027, 6, 30))
    q3 = _in_period(licence, 365_000, 0, dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    # A true-up of 100,000 arrives in Q4: later periods recognise on the new total...
    q4 = _in_period(licence, 465_000, q3, dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    q1 = _in_period(licence, 465_000, q3 + q4, dt.date(2027, 1, 1), dt.date(2027, 3, 31))
    # ...and the last period of the term takes what is still deferred.
    q2 = _in_period(licence, 465_000, q3 + q4 + q1, dt.date(2027, 4, 1), dt.date(2027, 6, 30))
    assert q3 == 92_000
    assert q3 + q4 + q1 + q2 == 465_000
