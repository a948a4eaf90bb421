"""The CPU thread Tuner, driven by a simulated machine (a clock, a load and per-image times that depend on the
thread count and on whether other processes are busy), and what a thread count may change in results."""

import copy
import os

import pytest
import torch

from dcgan import threads
from dcgan.models import build, run_generator, z_for_seeds
from dcgan.threads import Tuner, candidates

from helpers import run_cli

# seconds per image: quiet, 2 threads are 1.8× faster; with busy neighbours, 1 thread is 2× faster
QUIET = {2: 1.0e-3, 1: 1.8e-3}
BUSY = {2: 4.0e-3, 1: 2.0e-3}
BATCH = 128


@pytest.fixture
def machine(monkeypatch):
    """A simulated 2-core machine whose load a test switches on and off (busy(t) → bool)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # this machine's real load (the other test worker) must not reach a Tuner: the scenario sets it
    monkeypatch.setattr(threads._process_load, "recent", lambda at_least: None)
    monkeypatch.setattr(threads._process_load, "mark", lambda: None)
    torch.set_num_threads(2)

    class Machine:
        t = 0.0
        busy = staticmethod(lambda t: False)
        report_load = True
        busy_cost = BUSY
        before = None  # other processes' cores read before the loop's first item

        def clock(self):
            return self.t

        def load(self):
            return (1.0 if self.busy(self.t) else 0.0) if self.report_load else None

        def tuner(self):
            return Tuner(most=2, clock=self.clock, load=self.load, before=self.before)

        def run(self, tuner, until):
            """Feed steps until `until` seconds; returns (images done, changes). `seen`: each step's count."""
            images, changes, self.seen = 0, [], []
            while self.t < until:
                self.seen.append(torch.get_num_threads())
                per_image = (self.busy_cost if self.busy(self.t) else QUIET)[torch.get_num_threads()]
                self.t += per_image * BATCH
                images += BATCH
                change = tuner.observe(per_image * BATCH, BATCH)
                if change:
                    changes.append((self.t, change))
            return images, changes

    return Machine()


def best_fixed(machine, until):
    """Images of the better fixed thread count over the same scenario."""
    done = []
    for n in (1, 2):
        t, images = 0.0, 0
        while t < until:
            t += (BUSY if machine.busy(t) else QUIET)[n] * BATCH
            images += BATCH
        done.append(images)
    return max(done)


def test_candidates_halve_down_to_one():
    assert candidates(2) == [2, 1]
    assert candidates(8) == [8, 4, 2, 1]
    assert candidates(6) == [6, 3, 1]
    assert candidates(1) == [1]


def test_quiet_machine_keeps_two_threads_at_little_cost(machine):
    tuner = machine.tuner()
    images, changes = machine.run(tuner, 1200)
    tuner.close()
    assert torch.get_num_threads() == 2 and changes == []
    assert images >= 0.97 * best_fixed(machine, 1200)  # the start trial and the backed-off periodic checks


def test_a_short_loop_on_a_quiet_machine_tries_nothing(machine):
    """Quiet at the start: the count in use is measured, no other count is tried."""
    tuner = machine.tuner()
    seen = []
    for _ in range(8):
        seen.append(torch.get_num_threads())
        tuner.observe(QUIET[2] * BATCH, BATCH)
    assert seen == [2] * 8 and tuner.reference == pytest.approx(QUIET[2])


def test_without_a_load_reading_the_start_tries_every_count(machine):
    machine.report_load = False
    tuner = machine.tuner()
    seen = []
    for _ in range(12):
        seen.append(torch.get_num_threads())
        per_image = QUIET[torch.get_num_threads()]
        tuner.observe(per_image * BATCH, BATCH)
    assert 1 in seen and torch.get_num_threads() == 2


def test_busy_from_the_start_switches_to_one_thread(machine):
    machine.busy = lambda t: True
    tuner = machine.tuner()
    images, changes = machine.run(tuner, 600)
    assert torch.get_num_threads() == 1
    (t, change), *_ = changes
    assert (change.was, change.threads, change.reason) == (2, 1, "start: other processes use 1.0 cores")
    assert t < 3
    assert change.trial[1] < change.trial[2]
    assert (
        change.describe()
        == "threads 2 → 1 (start: other processes use 1.0 cores; per image 1: 2 ms, 2: 4 ms)"
    )
    assert images >= 0.95 * best_fixed(machine, 600)


def test_under_a_steady_load_a_clearly_slower_count_is_not_tried_again(machine):
    """Busy all along: after the start trial the periodic checks re-measure 1 thread only (a 2-thread item
    among busy neighbours is the expensive one), and the run keeps ≥ 99% of fixed 1 thread's images."""
    machine.busy = lambda t: True
    images, _ = machine.run(machine.tuner(), 1200)
    assert machine.seen.count(2) <= 2  # the warm-up item and the start trial's one
    assert images >= 0.99 * best_fixed(machine, 1200)


def test_busy_before_the_loop_runs_even_the_warm_up_item_on_one_thread(machine):
    """The load over the seconds before the loop (start-up, or the previous loop) said busy: the first
    item, which the Tuner does not time, runs on one thread too; two threads get the trial's one item."""
    machine.busy = lambda t: True
    machine.before = 1.0
    images, _ = machine.run(machine.tuner(), 600)
    assert machine.seen[:3] == [1, 1, 1] and machine.seen.count(2) == 1
    assert images >= 0.995 * best_fixed(machine, 600)


def test_busy_before_the_loop_but_quiet_at_its_first_item_goes_back_at_once(machine):
    machine.before = 1.0
    tuner = machine.tuner()
    seen = []
    for _ in range(8):
        seen.append(torch.get_num_threads())
        tuner.observe(QUIET[torch.get_num_threads()] * BATCH, BATCH)
    assert seen == [1] + [2] * 7 and tuner.reference == pytest.approx(QUIET[2])
    machine.before = 0.2  # a little load before the loop changes nothing
    tuner = machine.tuner()
    assert torch.get_num_threads() == 2


def test_the_load_before_a_loop_is_read_over_a_recent_window(monkeypatch):
    """OtherLoad.recent: the shortest window of ≥ at_least seconds ending now, not used up by a reading,
    nothing older than KEEP seconds."""
    # (other processes' busy CPU seconds + own, own CPU seconds, time) at each /proc/stat read
    reads = iter(
        [
            *[(0, 0, 0.0), (1.0, 0.2, 1.0), (1.1, 0.3, 1.1), (1.6, 0.3, 1.6)],
            *[(200.0, 0, 200.0), (201.5, 0, 201.0), (202.0, 0, 202.0), (203.0, 0, 204.0), (203.0, 0, 205.0)],
        ]
    )
    monkeypatch.setattr(threads.OtherLoad, "_sample", lambda self: next(reads))
    load = threads.OtherLoad()  # reading at t=0
    assert load.recent(0.3) == pytest.approx(0.8)  # t 0 → 1: 1.0 busy, 0.2 of it ours
    assert load.recent(0.3) == pytest.approx(0.8 / 1.1)  # t 0 → 1.1: since t=1 is too short (0.1 s)
    assert load.recent(0.3) == pytest.approx(1.0)  # t 1.1 → 1.6: the newest start ≥ 0.3 s back
    assert load.recent(0.3) is None  # every earlier reading is over a minute old
    assert load.recent(0.3) == pytest.approx(1.5)  # t 200 → 201
    load.mark()  # a loop ended at t=202: the next one reads from there
    assert load.recent(0.3) == pytest.approx(0.5)  # t 202 → 204: 1.0 busy over 2 s
    load.forget()  # a forked child starts over
    assert load.recent(0.3) is None


@pytest.mark.parametrize("report_load", [True, False])
def test_follows_a_neighbour_that_comes_and_goes(machine, report_load):
    """Busy from 100 s to 400 s: one thread within seconds of its arrival, two again after it leaves —
    from the load at once, or (where the load cannot be read) from the periodic check."""
    machine.busy = lambda t: 100 <= t < 400
    machine.report_load = report_load
    tuner = machine.tuner()
    images, changes = machine.run(tuner, 1500)
    to_one = [t for t, c in changes if c.threads == 1]
    back = [t for t, c in changes if c.threads == 2 and t > 400]
    assert to_one and 100 < to_one[0] < 105  # the steps' slow-down alone tells
    assert back and back[0] < (404 if report_load else 400 + Tuner.MAX_PERIOD + 5)
    tuner.close()  # the run may end part-way through a periodic trial of 1 thread
    assert torch.get_num_threads() == 2
    assert images >= 0.9 * best_fixed(machine, 1500)


def test_a_noisy_neighbour_that_does_not_matter_changes_nothing(machine):
    """Load appears but the step times stay the same: a trial runs and keeps the count."""
    machine.busy = lambda t: t >= 50
    machine.busy_cost = QUIET
    _, changes = machine.run(machine.tuner(), 200)
    assert changes == [] and torch.get_num_threads() == 2


def test_pinned_never_tunes_and_puts_back_what_it_found(machine):
    tuner = Tuner(1, clock=machine.clock, load=machine.load)
    assert torch.get_num_threads() == 1 and not tuner.active
    _, changes = machine.run(tuner, 100)  # one thread is the slow choice here; pinned stays
    assert changes == [] and torch.get_num_threads() == 1
    # while it is pinned, other loops do not tune (as under OMP_NUM_THREADS); afterwards they do
    assert not Tuner(clock=machine.clock, load=machine.load).active
    tuner.close()
    assert torch.get_num_threads() == 2 and "OMP_NUM_THREADS" not in os.environ
    assert Tuner(clock=machine.clock, load=machine.load).active


def test_a_loop_inside_a_tuned_loop_only_times(machine, monkeypatch):
    """run_generator inside evaluate's loop: the inner Tuner never switches, the outer one decides."""
    monkeypatch.setattr(threads, "OtherLoad", lambda: type("Busy", (), {"cores": lambda self: 1.0})())
    with threads.tuned() as outer:
        assert outer.active
        with threads.tuned() as inner:
            assert not inner.active
            for _ in range(20):
                assert inner.observe(0.5, BATCH) is None
            assert torch.get_num_threads() == 2
        outer.observe(1.0, BATCH)  # the first item: others are busy, so a trial of every count starts


def test_a_count_changed_under_an_item_is_put_back(machine):
    tuner = machine.tuner()
    machine.run(tuner, 20)
    assert tuner.threads == 2
    torch.set_num_threads(1)  # e.g. user code between two items
    assert tuner.observe(0.1, BATCH) is None and torch.get_num_threads() == 2
    tuner._start_trial("test")
    machine.run(tuner, 20.2)  # part-way through a trial of 1 thread
    tuner.close()
    assert torch.get_num_threads() == 2


def test_close_puts_back_the_count_the_loop_started_with(machine):
    machine.busy = lambda t: True
    tuner = machine.tuner()
    machine.run(tuner, 60)
    assert torch.get_num_threads() == 1
    tuner.close()
    assert torch.get_num_threads() == 2


def test_no_tuning_on_gpu_or_one_core(machine):
    assert not Tuner(device="cuda", clock=machine.clock).active
    assert not Tuner(most=1, clock=machine.clock).active


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_thread_count_does_not_change_sampling(precision):
    """Eval-mode G (convolutions, eval BatchNorm) gives the same bits at 1 and 2 threads, NCHW and
    channels_last."""
    from dcgan.config import ModelConfig

    g, _ = build(ModelConfig.pyramid(32, channels=3, width=16, z_dim=16), seed=0)
    g_cl = copy.deepcopy(g).to(memory_format=torch.channels_last)
    g.precision = g_cl.precision = precision
    z = z_for_seeds(g.cfg, range(48))
    out = {}
    for n in (1, 2):
        with threads.pinned(n):
            out[n] = (run_generator(g, z), run_generator(g_cl, z))
    assert torch.equal(out[1][0], out[2][0]) and torch.equal(out[1][1], out[2][1])


def test_cli_rejects_a_bad_thread_count(tmp_path):
    r = run_cli("sample", str(tmp_path), "--threads", "0", "--grid", str(tmp_path / "g.png"))
    assert r.returncode == 2 and "--threads takes 'auto' or a number" in r.stderr
    assert "Traceback" not in r.stderr
    assert threads.AUTO == 0
