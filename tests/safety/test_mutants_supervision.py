"""rig/fluid/supervision.py's persistence counter and leak reference, tested on their own.

The mutation run (scripts/mutation.sh) found that the controller's tests reach these only through
whole scenarios, where an off-by-one in the sample count or a stale first timestamp changes a
stop by one sample (2 ms) and no scenario notices. These tests pin the counts exactly.
"""

from __future__ import annotations

import pytest

from rig.fluid.supervision import LeakReference, Persistence


@pytest.mark.parametrize("samples", [0, -1])
def test_persistence_refuses_fewer_than_one_sample(samples: int) -> None:
    with pytest.raises(ValueError, match=f"at least 1 sample, got {samples}"):
        Persistence(samples)


def test_persistence_of_one_fires_on_the_first_sample() -> None:
    check = Persistence(1)
    assert check.first_t_us is None
    assert check.update(True, 10) is True and check.first_t_us == 10


def test_persistence_fires_on_exactly_the_nth_sample_and_keeps_the_first_time() -> None:
    check = Persistence(3)
    assert [check.update(True, t) for t in (100, 102, 104, 106)] == [False, False, True, True]
    assert check.first_t_us == 100


def test_persistence_starts_over_after_a_sample_below_the_limit() -> None:
    check = Persistence(2)
    check.update(True, 100)
    assert check.update(False, 102) is False and check.first_t_us is None
    assert check.update(True, 104) is False and check.first_t_us == 104
    assert check.update(True, 106) is True and check.first_t_us == 104


def test_persistence_clear_forgets_the_run() -> None:
    check = Persistence(2)
    check.update(True, 100)
    check.clear()
    assert check.first_t_us is None
    assert check.update(True, 200) is False and check.first_t_us == 200
    assert check.update(True, 202) is True


def test_leak_reference_settles_on_the_mean_of_exactly_its_samples() -> None:
    ref = LeakReference(settle_samples=2)
    assert ref.update(10.0) is None
    assert ref.update(20.0) == 15.0
    assert ref.update(100.0) == 15.0  # settled: later samples do not move it


def test_leak_reference_clear_starts_a_new_mean() -> None:
    ref = LeakReference(settle_samples=2)
    ref.update(10.0)
    ref.update(20.0)
    ref.clear()
    assert ref.reference is None
    assert ref.update(30.0) is None
    assert ref.update(50.0) == 40.0
