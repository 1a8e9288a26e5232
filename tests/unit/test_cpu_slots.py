"""Task-relative CPU slots (`semantics.state`): slot 0 is the task's CPU, a migration
rotates the slots, and numbering the CPUs the kernel's way is only a relabelling."""

from __future__ import annotations

import itertools

import pytest
import z3

from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import INTEL
from fsgs_smt.semantics.domain import CONCRETE as D
from fsgs_smt.semantics.events import ArchCode, ArchPrctl, Migrate, Observe, Trace, Yield
from fsgs_smt.semantics.props import view
from fsgs_smt.semantics.state import (
    PERCPU_BASE,
    PERCPU_STRIDE,
    Bounds,
    Store,
    layout,
    percpu_base,
    real_cpu,
    rotate_slots,
)
from fsgs_smt.sim import bounds_for, make_semantics, simulate
from fsgs_smt.symbolic.z3domain import Z3Domain

N = 3
KEYS = layout(Bounds(ncpus=N, ldt_slots=1))


def _world(t_cpu: int) -> dict[str, int | bool]:
    """Slot j of CPU registers holds 100 + real CPU, its other task 200 + real CPU."""
    values: dict[str, int | bool] = {k: (False if w == 0 else 0) for k, w in KEYS.items()}
    values["T.cpu"] = t_cpu
    for j in range(N):
        real = (t_cpu + j) % N
        values[f"cpu{j}.fs_base"] = 100 + real
        values[f"O{j}.fsbase"] = 200 + real
    return values


@pytest.mark.parametrize(("here", "target"), list(itertools.product(range(N), range(N))))
def test_rotation_keeps_each_cpu_with_its_number(here: int, target: int) -> None:
    store = Store(D, _world(here))
    rotate_slots(D, store, KEYS, N, target, True)
    assert store.get("T.cpu") == target
    for j in range(N):
        assert int(real_cpu(D, target, j, N)) == (target + j) % N
        assert store.get(f"cpu{j}.fs_base") == 100 + (target + j) % N
        assert store.get(f"O{j}.fsbase") == 200 + (target + j) % N


def test_rotation_under_a_false_guard_changes_nothing() -> None:
    store = Store(D, _world(1))
    rotate_slots(D, store, KEYS, N, 2, False)
    assert store.values == _world(1)


def test_a_concrete_target_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        rotate_slots(D, Store(D, _world(0)), KEYS, N, N, True)


def test_symbolic_rotation_is_the_concrete_one() -> None:
    """The same function over z3 terms: with T.cpu and the target symbolic, every
    (here, target) pair gives the concrete rotation."""
    zd = Z3Domain()
    here, target = z3.BitVec("here", 8), z3.BitVec("target", 8)
    for c, t in itertools.product(range(N), range(N)):
        world = {k: (zd.boolean(bool(v)) if KEYS[k] == 0 else zd.bv(int(v), KEYS[k]))
                 for k, v in _world(c).items()}  # fmt: skip
        world["T.cpu"] = here
        store = Store(zd, world)
        rotate_slots(zd, store, KEYS, N, target, zd.boolean(True))
        for j in range(N):
            got = z3.simplify(z3.substitute(
                store.get(f"cpu{j}.fs_base"), (here, z3.BitVecVal(c, 8)),
                (target, z3.BitVecVal(t, 8)),
            ))  # fmt: skip
            assert got.as_long() == 100 + (t + j) % N
            kgs = percpu_base(zd, here, j, N)
            kgs = z3.simplify(z3.substitute(kgs, (here, z3.BitVecVal(c, 8))))
            assert kgs.as_long() == PERCPU_BASE + ((c + j) % N) * PERCPU_STRIDE


def test_other_tasks_follow_their_cpus_across_migrations() -> None:
    """The other task of CPU 2 sets its FS base while the task visits CPU 2; after the
    task moves on, that thread is still CPU 2's, in the slot CPU 2 now has."""
    policy = load_checked("linux-5.9")
    events = (
        Migrate(cpu=2),
        Yield(other=(ArchPrctl(code=ArchCode.SET_FS, value=0x1234000),)),
        Migrate(cpu=1),
        Migrate(cpu=0),
        Observe(),
    )
    run = simulate(policy, Trace(events=events), INTEL, ncpus=N)
    sem = make_semantics(policy, INTEL, bounds_for(Trace(events=events), N))
    cpus = [int(w["T.cpu"]) for w in run.worlds]
    assert cpus == [2, 2, 1, 0, 0]
    assert run.worlds[1]["O0.fsbase"] == 0x1234000  # the task on CPU 2: slot 0 is CPU 2
    assert run.worlds[2]["O1.fsbase"] == 0x1234000  # on CPU 1: CPU 2 is slot 1
    assert run.worlds[3]["O2.fsbase"] == 0x1234000  # on CPU 0: CPU 2 is slot 2
    for world in (run.initial, *run.worlds):
        names = view(sem, world)
        assert names["kgs_ok"] is True
        assert names["cpu"] == world["T.cpu"]


def test_policy_cpu_id_is_the_real_cpu_number() -> None:
    """lutomirski-2016 records ``cpu.id`` when it switches a task out."""
    policy = load_checked("lutomirski-2016")
    events = (Migrate(cpu=2), Yield(), Migrate(cpu=1))
    run = simulate(policy, Trace(events=events), INTEL, ncpus=N)
    assert run.worlds[1]["T.saved_cpu"] == 2  # switched out (and back in) on CPU 2
    assert run.worlds[2]["T.saved_cpu"] == 2  # the migration switched it out on CPU 2


def test_a_world_says_its_size_in_words() -> None:
    """Reports and certificates name the world a proof is about, in the singular where due."""
    assert "worlds of 1 CPU and LDTs of up to 1 entry" == Bounds(ncpus=1, ldt_slots=1).describe()
    assert "worlds of 2 CPUs and LDTs of up to 8 entries" == Bounds().describe()
