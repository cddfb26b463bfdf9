"""The collapse guard against the original's rules (log, save band, reloads, stop), without training."""

import pytest

from cganlib import config
from cganlib.collapse_guard import (
    D_MODEL,
    G_MODEL,
    GAN_MODELS,
    LOG_FORMAT,
    CollapseGuard,
    in_save_band,
    should_print,
)

OK = {"d1": 0.6, "d2": 0.6, "g": 0.9}  # inside the save band


@pytest.mark.parametrize(
    "d1, d2, g, inside",
    [
        (0.6, 0.6, 0.9, True),
        (0.30, 0.6, 0.9, False), (0.3001, 0.6, 0.9, True), (0.95, 0.6, 0.9, False), (0.9499, 0.6, 0.9, True),
        (0.6, 0.25, 0.9, False), (0.6, 0.2501, 0.9, True), (0.6, 0.95, 0.9, False), (0.6, 0.9499, 0.9, True),
        (0.6, 0.6, 0.40, False), (0.6, 0.6, 0.4001, True), (0.6, 0.6, 1.50, False), (0.6, 0.6, 1.4999, True),
    ],
)
def test_save_band_edges_are_open(d1, d2, g, inside):
    assert in_save_band(d1, d2, g) is inside


@pytest.mark.parametrize(
    "j, d1, d2, g, printed",
    [
        (4, 0.5, 0.5, 0.5, True), (9, 0.5, 0.5, 0.5, True), (3, 0.5, 0.5, 0.5, False),
        (3, 1.10, 0.5, 0.5, False), (3, 1.1001, 0.5, 0.5, True),
        (3, 0.5, 1.10, 0.5, False), (3, 0.5, 1.1001, 0.5, True),
        (3, 0.5, 0.5, 1.80, False), (3, 0.5, 0.5, 1.8001, True),
    ],
)
def test_print_rule(j, d1, d2, g, printed):
    assert should_print(j, d1, d2, g) is printed


def test_log_format_is_the_originals():
    line = LOG_FORMAT % (106, 115, 5, 781, 0.6004, 0.25, 1.2345, 12.9, 3, 1, 7)
    assert line == ">106/115, 5/781, d1=0.600, d2=0.250, g=1.234, secs=12, tryAgain=3, nTripsOnSameSavedWts=1, nSaves=7"


def test_first_snapshot_then_eight_batch_spacing():
    guard = CollapseGuard(gan_upper=3.0)
    assert guard.check(1, **OK).snapshot  # ij - (-100) > 8
    assert (guard.nSaves, guard.ijSave) == (1, 1)
    assert not any(guard.check(ij, **OK).snapshot for ij in range(2, 10))  # 9 - 1 = 8 is not > 8
    assert guard.check(10, **OK).snapshot
    assert (guard.nSaves, guard.ijSave) == (2, 10)


def test_no_reload_before_a_snapshot():
    guard = CollapseGuard(gan_upper=3.0)
    decision = guard.check(1, d1=5.0, d2=5.0, g=9.0)
    assert decision.reloads == [] and guard.nTryAgains == 0


@pytest.mark.parametrize(
    "d1, d2, g, reloads",
    [
        (0.001, 0.6, 0.9, []), (0.00099, 0.6, 0.9, [D_MODEL]), (2.0, 0.6, 0.9, []), (2.0001, 0.6, 0.9, [D_MODEL]),
        (0.6, 0.001, 0.9, []), (0.6, 0.00099, 0.9, [G_MODEL]), (0.6, 2.0, 0.9, []), (0.6, 2.0001, 0.9, [G_MODEL]),
        (0.6, 0.6, 0.010, []), (0.6, 0.6, 0.0099, [GAN_MODELS]), (0.6, 0.6, 3.0, []), (0.6, 0.6, 3.0001, [GAN_MODELS]),
        (2.5, 0.0001, 0.001, [D_MODEL, G_MODEL, GAN_MODELS]),
        (2.5, 0.6, 3.5, [D_MODEL, GAN_MODELS]),
    ],
)
def test_reload_rules_and_their_order(d1, d2, g, reloads):
    guard = CollapseGuard(gan_upper=3.0)
    guard.check(1, **OK)
    decision = guard.check(2, d1=d1, d2=d2, g=g)
    assert decision.reloads == reloads
    assert guard.nTryAgains == guard.nTripsOnSameSavedWts == len(reloads)


@pytest.mark.parametrize("dataset, upper", [("celeb", 4.50), ("xray", 3.00)])
def test_gan_upper_bound_per_dataset(dataset, upper):

    assert config.resolve(dataset).gan_upper == upper
    guard = CollapseGuard(gan_upper=config.resolve(dataset).gan_upper)
    guard.check(1, **OK)
    assert guard.check(2, d1=0.6, d2=0.6, g=upper).reloads == []
    assert guard.check(3, d1=0.6, d2=0.6, g=upper + 0.01).reloads == [GAN_MODELS]


def test_abort_after_21_trips_and_band_resets_trips():
    guard = CollapseGuard(gan_upper=3.0)
    guard.check(1, **OK)
    for ij in range(2, 22):
        assert not guard.check(ij, d1=0.6, d2=0.6, g=5.0).abort  # trips 1..20
    assert guard.nTripsOnSameSavedWts == 20
    assert guard.check(22, **OK).snapshot  # back in the band: trips reset, a new snapshot
    assert guard.nTripsOnSameSavedWts == 0 and guard.nTryAgains == 20
    for ij in range(23, 43):
        assert not guard.check(ij, d1=0.6, d2=0.6, g=5.0).abort
    assert guard.check(43, d1=0.6, d2=0.6, g=5.0).abort  # the 21st trip
    assert guard.nTripsOnSameSavedWts == 21 and guard.nTryAgains == 41
