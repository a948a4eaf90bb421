"""CPU threads: the intra-op thread count that is fastest *now*, found by timing the work itself.

A 2-thread step waits at every parallel region for the thread that was descheduled, so on a machine where
other processes are busy one thread can be twice as fast as two (docs/PERFORMANCE.md). A Tuner wraps a loop
of similar work items (training steps, generation or feature batches): it times each item, tries every
candidate count for a short trial when the machine's load or the timings say that conditions changed
(other processes busy at the start included, read over the seconds before the loop too, so that even its
untimed first item runs on one thread), and on a slow periodic check, and keeps the fastest. On a
quiet machine a short loop runs on all cores from its first item: no trial costs it anything.

What a thread count changes: only the order in which PyTorch's channels-last BatchNorm adds up its per-channel
sums in training (each thread sums a share of the rows, then the shares are added), so training weights
differ at rounding level between thread counts; convolutions, matrix products and eval-mode layers give the
same bits at any count. `--threads N` (or OMP_NUM_THREADS, the usual knob, which torchrun also sets) pins
the count: a pinned run is bit-reproducible and resumes bit-identically.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

AUTO = 0  # --threads auto


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a cgroup cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pinned_by_environment() -> bool:
    """OMP_NUM_THREADS set by the user (or torchrun) means: this many threads, do not tune."""
    return bool(os.environ.get("OMP_NUM_THREADS", "").strip())


@contextmanager
def pinned(threads: int) -> Iterator[None]:
    """Exactly `threads` intra-op threads inside the block, which no Tuner in it changes (it sets
    OMP_NUM_THREADS, as a user would); the count and the variable are put back after it."""
    count, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        torch.set_num_threads(count)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


def candidates(most: int) -> list[int]:
    """The counts a Tuner tries: most, most/2, most/4, …, 1."""
    out, n = [], most
    while n >= 1:
        out.append(n)
        n //= 2
    return out if out[-1] == 1 else [*out, 1]


class OtherLoad:
    """Cores used by *other* processes since the previous call, on the cores this process may run on: their
    busy time (/proc/stat's cpuN lines) minus this process's own CPU time. None where /proc/stat cannot be
    read (not Linux)."""

    KEEP, MOST = 60.0, 256  # `recent` looks back over the last KEEP seconds, at most MOST readings

    def __init__(self) -> None:
        try:
            self.cpus = {f"cpu{n}".encode() for n in os.sched_getaffinity(0)}
        except AttributeError:
            self.cpus = set()
        self.last = self._sample()
        self.readings = deque([self.last] if self.last else [], maxlen=self.MOST)  # `recent`'s, shared
        self.lock = threading.Lock()

    def _sample(self) -> tuple[float, float, float] | None:
        busy = 0
        try:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    name, *values = line.split()
                    if name in self.cpus:
                        # user nice system idle iowait irq softirq steal (guest time is inside user)
                        fields = [int(v) for v in values[:8]]
                        busy += sum(fields) - fields[3] - fields[4]
        except (OSError, ValueError, IndexError):
            return None
        if not self.cpus:
            return None
        return busy / os.sysconf("SC_CLK_TCK"), sum(os.times()[:2]), time.monotonic()

    def cores(self) -> float | None:
        now = self._sample()
        if now is None or self.last is None:
            return None
        before, self.last = self.last, now
        return self._between(before, now)

    def recent(self, at_least: float) -> float | None:
        """Other processes' cores over the shortest window of ≥ `at_least` seconds that ends now and starts
        at an earlier reading (`recent`, `mark`, or construction), within the last KEEP seconds; None if
        there is none. Unlike `cores`, a call does not use its window up: two loops that start a moment
        apart both see the load of the seconds before them."""
        now = self._sample()
        if now is None:
            return None
        with self.lock:
            while self.readings and now[2] - self.readings[0][2] > self.KEEP:
                self.readings.popleft()
            start = next((r for r in reversed(self.readings) if now[2] - r[2] >= at_least), None)
            self.readings.append(now)
        return None if start is None else self._between(start, now)

    def mark(self) -> None:
        """A reading for later `recent` calls to start from (a loop's end: the next sees the time since)."""
        now = self._sample()
        if now is not None:
            with self.lock:
                self.readings.append(now)

    def forget(self) -> None:
        """Drop the readings (a forked child: its own CPU time starts again from zero), and the lock, which
        another thread may have held at the fork."""
        self.readings = deque(maxlen=self.MOST)
        self.lock = threading.Lock()

    @staticmethod
    def _between(a: tuple[float, float, float], b: tuple[float, float, float]) -> float | None:
        (busy0, own0, t0), (busy1, own1, t1) = a, b
        if t1 - t0 <= 0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


# Readings of the load since this module was imported: what a loop's first item sees before it runs.
_process_load = OtherLoad()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_process_load.forget)


@dataclass(frozen=True)
class Change:
    """A thread-count change a Tuner made, with why and the per-item times of its trial (seconds)."""

    threads: int
    was: int
    reason: str
    trial: dict[int, float]

    def describe(self) -> str:
        times = ", ".join(f"{n}: {t * 1e3:.3g} ms" for n, t in sorted(self.trial.items()))
        return f"threads {self.was} → {self.threads} ({self.reason}; per image {times})"


class Tuner:
    """Times a loop's items and keeps the fastest thread count (see the module docstring).

    Call `observe(seconds, items)` after each item; it returns a Change when the count changed. `threads=N`
    (or OMP_NUM_THREADS) pins N and never tunes; so does a machine with one core, a non-CPU device, and a
    loop inside another tuned loop (its items are part of the outer loop's, which tunes them). Use it
    through `tuned`, which closes it."""

    TRIAL_ITEMS, TRIAL_SECONDS, TRIAL_MAX_ITEMS = 2, 0.1, 12  # per count: ≥ 2 items and ≥ 0.1 s
    WINDOW = 3  # recent items whose median is compared with the time found by the last trial
    DRIFT = 0.3  # ±30% from it starts a new trial
    LOAD_CHANGE = 0.5  # so does a change of this many cores used by other processes (over ≥ LOAD_SECONDS),
    LOAD_SECONDS, LOAD_GAP = 2.0, 10.0  # at most once per LOAD_GAP seconds
    PERIOD, MAX_PERIOD = 30.0, 120.0  # a periodic trial, its period doubling while it keeps the count
    BEFORE_SECONDS = 0.3  # the shortest reading of the load before the first item that is trusted
    RECHECK = "periodic check of the count in use"

    def __init__(
        self,
        threads: int = AUTO,
        *,
        device: torch.device | str = "cpu",
        most: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        load: Callable[[], float | None] | None = None,
        before: float | None = None,
        nested: bool = False,
    ) -> None:
        self.pin = pinned(threads) if threads != AUTO else None
        if self.pin:
            self.pin.__enter__()
        self.most = most or available_cores()
        self.active = (
            threads == AUTO
            and torch.device(device).type == "cpu"
            and not pinned_by_environment()
            and self.most > 1
            and not nested
        )
        self.clock = clock
        # /proc/stat is read only by a Tuner that tunes (the explorer runs a passive one per request)
        self.load = load if load is not None else OtherLoad().cores if self.active else (lambda: None)
        self.period = self.PERIOD
        self.queue: list[int] = []
        self.trial: dict[int, list[float]] = {}
        self.trial_seconds = 0.0
        self.reason = "start"
        self.chosen = self.expected = self.initial = torch.get_num_threads()
        self.reference = self.next_trial = self.load_t = self.trial_end = 0.0
        self.load_ref: float | None = None  # other processes' cores when the count was last chosen
        self.load_now: float | None = None  # ... at the last reading
        self.clear_win = False  # whether the last trial found every other count clearly slower
        self.recent: deque[float] = deque(maxlen=self.WINDOW)
        self.started = self.closed = False
        self.real_load = self.active and load is None  # (tests give a simulated machine's load and before)
        if self.real_load and before is None:
            before = _process_load.recent(self.BEFORE_SECONDS)
        if self.active and before is not None and before >= self.LOAD_CHANGE:
            self._switch(candidates(self.most)[-1])  # busy already: the first item (warm-up) on the fewest

    @property
    def threads(self) -> int:
        """The count in use now (during a trial, the one being tried)."""
        return self.expected

    def observe(self, seconds: float, items: int = 1) -> Change | None:
        """Feed the time of one item of work (of `items` images); returns a Change when the count changed."""
        if not self.active or items <= 0:
            return None
        if torch.get_num_threads() != self.expected:  # someone else changed it under this item
            self._switch(self.expected)
            return None
        if not self.started:
            return self._first_item()
        per_item = seconds / items
        if self.queue:
            return self._trial_step(per_item, seconds)
        self.recent.append(per_item)
        reason = self._why_retry()
        if reason == self.RECHECK:  # only the count in use: its reference, at no cost
            self._start_trial(reason, [self.expected])
        elif reason:
            self._start_trial(reason)
        return None

    @contextmanager
    def item(self, images: int) -> Iterator[None]:
        """Time the block as one item of `images` images and observe it (a block that raises is not timed)."""
        t = time.perf_counter()
        yield
        self.observe(time.perf_counter() - t, images)

    def close(self) -> None:
        """Put back the count (and OMP_NUM_THREADS) the loop started with: the next loop tunes its own."""
        if self.pin:
            self.pin.__exit__(None, None, None)
            self.pin = None
        elif self.active and torch.get_num_threads() != self.initial:
            torch.set_num_threads(self.initial)
        if self.real_load and not self.closed:
            _process_load.mark()  # the next loop reads the load since this one ended
        self.queue, self.closed = [], True

    def _first_item(self) -> None:
        """The first item is warm-up (not timed; on the fewest threads when the load before it said busy);
        the load since the Tuner was made says whether to try every count now (others busy, or no load
        reading) or only measure the count the loop started with."""
        self.started = True
        others = self.load()
        self.load_ref = others
        if others is None:
            self._start_trial("start")
        elif others < self.LOAD_CHANGE:  # quiet (again, if it was busy before the first item)
            self._switch(self.initial)
            self._start_trial("start", [self.initial])
        else:  # busy: the fewest threads first, so a slow count is cut short after one item
            self._start_trial(f"start: other processes use {others:.1f} cores", candidates(self.most)[::-1])
            self._switch(self.queue[0])

    def _start_trial(self, reason: str, counts: list[int] | None = None) -> None:
        # the count in use first (no switch, and it is measured under the new conditions), then the others
        now = self.expected
        self.queue = counts or [now, *(n for n in candidates(self.most) if n != now)]
        self.trial, self.trial_seconds, self.reason = {n: [] for n in self.queue}, 0.0, reason

    def _trial_step(self, per_item: float, seconds: float) -> Change | None:
        n = self.queue[0]
        self.trial[n].append(per_item)
        self.trial_seconds += seconds
        done = len(self.trial[n]) >= self.TRIAL_ITEMS and self.trial_seconds >= self.TRIAL_SECONDS
        tried = [statistics.median(ts) for m, ts in self.trial.items() if ts and m != n]
        if tried and per_item > min(tried) * (1 + self.DRIFT):  # clearly slower: one item says enough
            done = True
        if not done and len(self.trial[n]) < self.TRIAL_MAX_ITEMS:
            return None
        self.queue.pop(0)
        self.trial_seconds = 0.0
        if self.queue:
            self._switch(self.queue[0])
            return None
        return self._finish_trial()

    def _finish_trial(self) -> Change | None:
        times = {n: statistics.median(ts) for n, ts in self.trial.items() if ts}
        best = min(times, key=times.__getitem__)
        was = self.chosen
        self.chosen, self.reference = best, times[best]
        self._switch(best)
        if len(times) > 1:  # (a recheck of one count keeps what the last full trial found)
            self.clear_win = all(t > times[best] * (1 + self.DRIFT) for n, t in times.items() if n != best)
        kept = best == was and not self.reason.startswith("start")  # only a confirmed count backs off
        self.period = min(self.period * 2, self.MAX_PERIOD) if kept else self.PERIOD
        self.trial_end = self.clock()
        self.next_trial = self.trial_end + self.period
        self.recent.clear()
        self.load()  # the next load window starts at the trial's end
        self.load_t = self.trial_end
        if best == was:
            return None
        return Change(best, was, self.reason, times)

    def _switch(self, n: int) -> None:
        self.expected = n
        if torch.get_num_threads() != n:  # no warm-up: the first item after a switch runs at full speed
            torch.set_num_threads(n)

    def _why_retry(self) -> str | None:
        """A reason to run a new trial now, or None."""
        if len(self.recent) == self.WINDOW:
            now = statistics.median(self.recent)
            if now > self.reference * (1 + self.DRIFT):
                return f"items {now / self.reference - 1:.0%} slower"
            if now < self.reference * (1 - self.DRIFT) and self.chosen < self.most:
                return f"items {1 - now / self.reference:.0%} faster"
        others = self._other_cores()
        if others is not None:
            self.load_now = others
            if self.load_ref is None:
                self.load_ref = others
            elif (
                abs(others - self.load_ref) >= self.LOAD_CHANGE
                and self.clock() >= self.trial_end + self.LOAD_GAP
            ):
                was, self.load_ref = self.load_ref, others  # the level the next trial's count is chosen at
                return f"other processes use {others:.1f} cores, were {was:.1f}"
        if self.clock() >= self.next_trial:
            # Under the load the last trial saw, the counts it found clearly slower are not tried again (one
            # item of 2 threads among two busy neighbours can take 5× the time of 1); a change of load, or of
            # the items' time, starts a full trial. Without a load reading, the periodic check is the only
            # way to notice, so it tries every count.
            steady = (
                self.load_now is not None
                and self.load_ref is not None
                and abs(self.load_now - self.load_ref) < self.LOAD_CHANGE
            )
            return self.RECHECK if steady and self.clear_win else "periodic check"
        return None

    def _other_cores(self) -> float | None:
        """Other processes' mean cores since the last window (None until LOAD_SECONDS have passed)."""
        now = self.clock()
        if now - self.load_t < self.LOAD_SECONDS:
            return None
        self.load_t = now
        return self.load()


_nesting = threading.local()  # how many tuned loops are open in this thread


@contextmanager
def tuned(threads: int = AUTO, device: torch.device | str = "cpu") -> Iterator[Tuner]:
    """A Tuner for one loop; the count it started with is back when the loop ends (or raises). Inside
    another tuned loop of this thread it only times (the outer loop's items contain its items)."""
    depth = getattr(_nesting, "depth", 0)
    tuner = Tuner(threads, device=device, nested=depth > 0)
    _nesting.depth = depth + 1
    try:
        yield tuner
    finally:
        _nesting.depth = depth
        tuner.close()
