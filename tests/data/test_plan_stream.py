"""PlanStream: the one (seed, recipe, dataset, world layout, epoch, step) -> plan mapping, its
cursor and its state."""

import numpy as np
import pytest

from fastdeit.data.plan import PlanConfig, make_plan
from fastdeit.data.plan_stream import PlanStream

CFG = PlanConfig(img_size=32, global_batch=64, mix_group=16, epoch_multiple=16)
RNG = np.random.default_rng(0)
WIDTHS, HEIGHTS = RNG.integers(40, 121, 200), RNG.integers(40, 121, 200)


def stream(seed=3, rank=0, world=1, fingerprint="abc"):
    return PlanStream(CFG, seed, WIDTHS, HEIGHTS, fingerprint, rank, world)


def test_plans_are_the_plan_functions_of_this_ranks_groups():
    whole, half = stream(), stream(rank=1, world=2)
    assert whole.steps == 3 and whole.local_batch == 64 and half.local_batch == 32
    for epoch, step in [(0, 0), (2, 1)]:
        ref = make_plan(CFG, 3, epoch, step, WIDTHS, HEIGHTS)
        mine = whole.plan(epoch, step)
        assert np.array_equal(mine.positions, ref.positions) and np.array_equal(mine.crop, ref.crop)
        second = half.plan(epoch, step)  # rank 1 of 2: the second half of the groups
        assert np.array_equal(second.groups, [2, 3])
        assert np.array_equal(second.positions, ref.positions[32:])
        assert np.array_equal(second.mix_lam, ref.mix_lam[2:])


def test_plans_do_not_depend_on_the_order_they_are_asked_for():
    """The stream plans blocks of steps ahead and keeps them: jumping around, going back or
    asking from several threads must still give each (epoch, step) its own plan."""
    from concurrent.futures import ThreadPoolExecutor

    CFG2 = PlanConfig(img_size=32, global_batch=32, mix_group=16, epoch_multiple=16)
    s = PlanStream(CFG2, 3, WIDTHS, HEIGHTS, "abc", 1, 2)
    assert s.steps == 6
    keys = [(0, 0), (0, 1), (0, 5), (0, 2), (1, 3), (0, 3), (0, 3), (1, 4), (1, 0), (0, 4)]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda k: s.plan(*k), keys * 3))
    for (epoch, step), plan in zip(keys * 3, got):
        ref = make_plan(CFG2, 3, epoch, step, WIDTHS, HEIGHTS, s.groups)
        assert (plan.epoch, plan.step) == (epoch, step)
        assert np.array_equal(plan.positions, ref.positions) and np.array_equal(plan.crop, ref.crop)
        assert np.array_equal(plan.mix_lam, ref.mix_lam) and np.array_equal(plan.erase_seed, ref.erase_seed)


def test_the_stream_runs_on_across_epochs():
    s = stream()
    keys = s.keys_from(1, 1)
    assert [next(keys) for _ in range(5)] == [(1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert next(s.keys_from(1, 3)) == (2, 0)  # a finished epoch goes on with the next
    assert s.after(0, 2) == (1, 0)


def test_cursor_moves_only_through_its_methods_and_refuses_steps_outside_the_epoch():
    s = stream()
    assert (s.epoch, s.step) == (0, 0)
    s.seek(4, 2)
    s.handed_out(4, 2)
    assert (s.epoch, s.step) == (4, 3)
    s.epoch_finished()
    assert (s.epoch, s.step) == (5, 0)
    with pytest.raises(AttributeError):
        s.step = 1  # read-only: no other object writes the cursor
    for epoch, step in [(-1, 0), (0, 4), (0, -1)]:
        with pytest.raises(ValueError):
            s.seek(epoch, step)


def test_state_round_trips_across_world_sizes_and_refuses_another_stream():
    s = stream()
    s.seek(2, 1)
    state = s.state_dict()
    assert (state["epoch"], state["step"], state["seed"], state["fingerprint"]) == (2, 1, 3, "abc")
    other_layout = stream(rank=1, world=4)
    other_layout.load_state_dict(state)  # world layout is not part of the identity
    assert (other_layout.epoch, other_layout.step) == (2, 1)
    for other, key in [(stream(seed=4), "seed"), (stream(fingerprint="xyz"), "fingerprint"),
                       (PlanStream(PlanConfig(img_size=48, global_batch=64, mix_group=16, epoch_multiple=16),
                                   3, WIDTHS, HEIGHTS, "abc"), "plan_config")]:
        with pytest.raises(ValueError, match=key):
            other.load_state_dict(state)
    for bad in ({**state, "version": 99}, {**state, "step": 7}, {**state, "epoch": "x"}, "not a dict"):
        with pytest.raises(ValueError):
            stream().load_state_dict(bad)


def test_too_few_images_or_an_uneven_world_are_refused():
    with pytest.raises(ValueError, match="data.global_batch"):
        PlanStream(CFG, 0, WIDTHS[:60], HEIGHTS[:60])
    with pytest.raises(ValueError, match="ranks"):
        stream(world=3)
