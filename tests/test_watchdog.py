"""The stall watchdog on its own: a call that does not end is reported once and aborted."""
import re
import threading
import time

import pytest

from ghostmlp import Network
from ghostmlp.watchdog import Watch, Watchdog


def watched(watch, timeout, grace=0.0):
    aborted = threading.Event()
    dog = Watchdog(watch, timeout, "rank 1 of 4 on host h1", aborted.set, grace=grace)
    return dog, aborted


def test_a_call_that_does_not_end_is_reported_and_aborted(capfd):
    watch = Watch()
    watch.op, watch.layer, watch.calls = "allgather", 2, 1       # inside a call
    started = time.monotonic()
    dog, aborted = watched(watch, 0.5)
    assert aborted.wait(5)
    assert 0.5 <= time.monotonic() - started < 2
    dog.thread.join(1)
    assert not dog.thread.is_alive()
    err = capfd.readouterr().err
    assert re.fullmatch(r"ghostmlp: stall: rank 1 of 4 on host h1 made no progress for [01] s "
                        r"in allgather \(layer 2\); ending the job \(stall_timeout 0.5 s\)\n", err)


def test_calls_that_end_or_no_call_are_not_stalls():
    watch = Watch()
    dog, aborted = watched(watch, 0.3)
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:          # calls that keep ending, then none at all
        watch.calls += 2
        time.sleep(0.01)
    assert not aborted.wait(0.8)
    dog.stop()
    dog.thread.join(1)
    assert not dog.thread.is_alive()


def test_the_thread_ends_with_its_watch():
    watch = Watch()
    dog, _ = watched(watch, 0.2)
    del watch
    dog.thread.join(2)
    assert not dog.thread.is_alive()


@pytest.mark.parametrize("value", [-1, float("nan"), "10"])
def test_stall_timeout_is_checked(value):
    with pytest.raises(ValueError, match="stall_timeout"):
        Network(stall_timeout=value)


def test_a_checkpoint_save_is_one_watched_call_around_the_calls_inside_it(tmp_path, monkeypatch):
    """A rank stalled in a checkpoint's collective I/O is seen too: the save is one watched
    call, and the exchange's own calls inside it keep it noted (the count stays odd)."""
    from mpi4py import MPI

    import ghostmlp
    from ghostmlp import checkpoint
    net = Network(seed=0, comm=MPI.COMM_SELF, stall_timeout=0)
    net.add_layer("input", 3).add_layer("hidden", 4).add_layer("output", 2).initialize()
    exchange = net.engine.exchange
    seen, save = [], checkpoint._save

    def spying(*args):
        seen.append((exchange.watch.calls & 1, exchange.watch.op))
        with exchange.watched("allreduce"):
            seen.append((exchange.watch.calls & 1, exchange.watch.op))
        save(*args)

    monkeypatch.setattr(checkpoint, "_save", spying)
    ghostmlp.save(net, tmp_path / "net.gmlp")
    assert seen == [(1, "checkpoint save")] * 2 and exchange.watch.calls % 2 == 0
    assert ghostmlp.load(tmp_path / "net.gmlp").sizes == [3, 4, 2]
