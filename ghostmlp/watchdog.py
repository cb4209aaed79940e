"""The stall watchdog: a thread that ends the job when a communication call makes no progress."""
import contextlib
import os
import threading
import time
import weakref

STALL_EXIT = 3          # the job's exit status when the watchdog ends it


class Watch:
    """What one rank's communication is doing, written by the exchange around each blocking call.

    calls counts the starts and the ends of the calls, so that it is odd inside one; op
    and layer name the call (layer -1: not a layer's). Two or three attribute writes a
    call, no lock and no clock: the watchdog samples them.
    """
    __slots__ = ("calls", "op", "layer", "__weakref__")

    def __init__(self):
        self.calls, self.op, self.layer = 0, "", -1

    @contextlib.contextmanager
    def call(self, op, layer=-1):
        """Note one blocking call (op, layer) around what runs inside; inside another noted
        call (a checkpoint's save gathering a layer) the outer one stays noted. The step's
        own calls write the fields inline instead: a context manager costs more there."""
        if self.calls & 1:
            yield
            return
        self.op, self.layer, self.calls = op, layer, self.calls + 1
        try:
            yield
        finally:
            self.calls += 1


class Watchdog:
    """A daemon thread that ends the job when `watch` stays inside one call for `timeout` s.

    It looks every min(1 s, timeout / 10): a count that is odd and unchanged since the
    first look at it is a stalled call. Then it writes one line naming `where` (rank and
    host), the operation and the layer to stderr, gives the launcher a moment to forward
    it, and calls abort() (MPI_Abort: the launcher ends every rank, also on hosts it can no
    longer reach, where a plain exit of this process would leave it waiting). The thread
    ends by itself when the watch is gone (its exchange was freed) or on stop().
    """

    def __init__(self, watch, timeout, where, abort, grace=1.0):
        self.timeout, self.where, self.abort, self.grace = float(timeout), where, abort, grace
        self.period = min(1.0, self.timeout / 10)
        self._watch = weakref.ref(watch)
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ghostmlp-stall-watchdog",
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self._stopped.set()

    def _run(self):
        seen, since = -1, time.monotonic()
        while not self._stopped.wait(self.period):
            watch = self._watch()
            if watch is None:
                return
            calls, now = watch.calls, time.monotonic()
            if calls != seen or not calls & 1:
                seen, since = calls, now
            elif now - since >= self.timeout:
                self._end(watch, now - since)
                return
            del watch

    def _end(self, watch, waited):
        layer = f"layer {watch.layer}" if watch.layer >= 0 else "no layer"
        message = (f"ghostmlp: stall: {self.where} made no progress for {waited:.0f} s in "
                   f"{watch.op} ({layer}); ending the job (stall_timeout {self.timeout:g} s)\n")
        os.write(2, message.encode())       # unbuffered: no lock another thread may hold
        time.sleep(self.grace)
        self.abort()
