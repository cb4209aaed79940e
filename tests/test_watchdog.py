"""The stall watchdog on its own: a watched call that does not end is reported once and
aborted; calls that end, unwatched waits and other watches' calls are not."""
import re
import threading
import time

import numpy as np
import pytest

from ghostmlp import Network
from ghostmlp.watchdog import Watch, Watchdog, watched


class Link:
    """Something with a watch whose watched call blocks until `release` is set."""

    def __init__(self, watch):
        self.watch, self.release, self.entered = watch, threading.Event(), threading.Event()

    @watched("allgather")
    def gather(self, l):
        self.entered.set()
        self.release.wait(10)

    @watched()
    def run(self, op, l):
        self.gather(l)              # inside an outer watched call: the outer one is named

    @watched(layer=None)
    def agree(self, op):
        self.release.wait(10)

    def unwatched(self):
        self.release.wait(10)


def dog(watch, timeout, grace=0.0):
    aborted = threading.Event()
    return Watchdog(watch, timeout, "rank 1 of 4 on host h1", aborted.set, grace=grace), aborted


def in_thread(call, *args):
    thread = threading.Thread(target=call, args=args, daemon=True)
    thread.start()
    return thread


def message(op, layer, timeout):
    return (r"ghostmlp: stall: rank 1 of 4 on host h1 made no progress for [01] s in "
            rf"{op} \({layer}\); ending the job \(stall_timeout {timeout} s\)\n")


@pytest.mark.parametrize("method, args, op, layer", [
    ("gather", (2,), "allgather", "layer 2"),
    ("run", ("reduce_scatter", 1), "reduce_scatter", "layer 1"),
    ("agree", ("agreement on mapping the data",), "agreement on mapping the data",
     "no layer"),
])
def test_a_call_that_does_not_end_is_reported_once_and_aborted(capfd, method, args, op, layer):
    link = Link(Watch())
    thread = in_thread(getattr(link, method), *args)
    started = time.monotonic()
    watchdog, aborted = dog(link.watch, 0.5)
    assert aborted.wait(5)
    assert 0.5 <= time.monotonic() - started < 2
    watchdog.thread.join(1)
    assert not watchdog.thread.is_alive()
    assert re.fullmatch(message(op, layer, 0.5), capfd.readouterr().err)
    link.release.set()
    thread.join(2)


def test_calls_that_end_unwatched_waits_and_other_watches_calls_are_not_stalls():
    link, other = Link(Watch()), Link(Watch())
    watchdog, aborted = dog(link.watch, 0.3)
    waiting = [in_thread(link.unwatched), in_thread(other.gather, 0)]
    deadline = time.monotonic() + 1.2
    quick = Link(link.watch)
    quick.release.set()
    while time.monotonic() < deadline:          # watched calls that keep ending
        quick.gather(0)
        time.sleep(0.01)
    assert not aborted.wait(0.8)                # and then none at all
    watchdog.stop()
    watchdog.thread.join(2)
    assert not watchdog.thread.is_alive()
    for link_ in (link, other):
        link_.release.set()
    for thread in waiting:
        thread.join(2)


def test_a_wait_in_compiled_code_is_seen_through_its_record(capfd):
    """Compiled code leaves no frame: a record that stays in one wait is a stall, named from
    the record; waits that keep beginning are not, nor a record with none in progress."""
    watch, record = Watch(), np.zeros(3, np.int64)
    watch.add_record(record, ("halo wait", "allgather"))
    assert watch.current({}, None) is None
    record[:] = (7, 2, 3)                       # the 7th wait, an allgather of layer 3
    assert watch.current({}, None)[1:] == ("allgather", 3)
    watchdog, aborted = dog(watch, 0.3)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:          # a new wait every 10 ms
        record[0] += 1
        time.sleep(0.01)
    assert not aborted.is_set()
    assert aborted.wait(3)                      # and then one that does not end
    assert re.fullmatch(message("allgather", "layer 3", 0.3), capfd.readouterr().err)
    watchdog.thread.join(2)
    watch.remove_record(record)
    assert watch.current({}, None) is None


def test_the_thread_ends_with_its_watch():
    watch = Watch()
    watchdog, _ = dog(watch, 0.2)
    del watch
    watchdog.thread.join(2)
    assert not watchdog.thread.is_alive()


@pytest.mark.parametrize("value", [-1, float("nan"), "10"])
def test_stall_timeout_is_checked(value):
    with pytest.raises(ValueError, match="stall_timeout"):
        Network(stall_timeout=value)


def test_a_checkpoint_save_is_one_watched_call_around_the_calls_inside_it(tmp_path, monkeypatch):
    """A rank stalled in a checkpoint's collective I/O is seen too: the save is one watched
    call of the network's watch, named so over the exchange's own calls inside it."""
    import sys

    from mpi4py import MPI

    import ghostmlp
    from ghostmlp import checkpoint
    net = Network(seed=0, comm=MPI.COMM_SELF, stall_timeout=0)
    net.add_layer("input", 3).add_layer("hidden", 4).add_layer("output", 2).initialize()
    exchange = net.engine.exchange
    seen, save = [], checkpoint._save

    def spying(*args):
        frames = {0: sys._getframe()}
        seen.append(exchange.watch.current(frames, None)[1:])
        seen.append(Watch().current(frames, None))
        save(*args)

    monkeypatch.setattr(checkpoint, "_save", spying)
    ghostmlp.save(net, tmp_path / "net.gmlp")
    assert seen == [("checkpoint save", -1), None]
    assert ghostmlp.load(tmp_path / "net.gmlp").sizes == [3, 4, 2]
