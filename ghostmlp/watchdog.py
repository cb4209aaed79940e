"""The stall watchdog: a thread that ends the job when a communication call makes no progress.

The calls it watches cost nothing extra: a function marked @watched is only entered in a
table of code objects, and the watchdog finds the calls in progress by looking at the
threads' stacks (sys._current_frames) about once a second.
"""
import os
import sys
import threading
import time
import weakref

STALL_EXIT = 3          # the job's exit status when the watchdog ends it

_WATCHED = {}           # code object -> (op or None: the frame's local `op`, layer's local name)


def watched(op=None, layer="l"):
    """Mark a method of an object with a `watch` attribute as a blocking communication call.

    op names the call in the watchdog's message (None: the call's own argument `op`);
    layer is the name of its argument holding the weight layer (missing: no layer). The
    method itself is returned unchanged.
    """
    def mark(function):
        _WATCHED[function.__code__] = (op, layer)
        return function
    return mark


class Watch:
    """The token that makes calls one watchdog's: a watched call belongs to the Watch that
    its object's `watch` attribute holds (an exchange's, an agreement's). Waits in compiled
    code, which leave no Python frame, are seen through records: int64 [waits begun,
    index + 1 into `names` of the wait in progress (0: none), its layer], which that code
    writes (ghostmlp._mpi)."""
    __slots__ = ("records", "__weakref__")

    def __init__(self):
        self.records = []

    def add_record(self, record, names):
        self.records.append((record, names))

    def remove_record(self, record):
        self.records = [(r, names) for r, names in self.records if r is not record]

    def current(self, frames, skip):
        """The outermost watched call of this watch in progress on any thread but `skip`,
        as (key, op, layer), or None; key: the same for as long as that one call lasts
        (its frame, or a record's (id, waits begun)). frames: sys._current_frames()."""
        found = None
        for thread, frame in frames.items():
            if thread == skip:
                continue
            while frame is not None:
                marked = _WATCHED.get(frame.f_code)
                if marked is not None:
                    names = frame.f_locals
                    owner = names.get("self")
                    if getattr(owner, "watch", None) is self:
                        op, layer = marked
                        found = (frame, op or names.get("op", "?"),
                                 names.get(layer, -1) if layer else -1)
                frame = frame.f_back
        if found is None:
            for record, names in self.records:
                waits, op, layer = (int(value) for value in record)
                if op:
                    return (id(record), waits), names[op - 1], layer
        return found


class Watchdog:
    """A daemon thread that ends the job when one call of `watch` lasts `timeout` s.

    It looks every `period` s (default min(1 s, timeout / 10)): the same frame of a watched call, seen for that
    long, is a stalled call. Then it writes one line naming `where` (rank and host), the
    operation and the layer to stderr, gives the launcher a moment to forward it, and calls
    abort() (MPI_Abort: the launcher ends every rank, also on hosts it can no longer reach,
    where a plain exit of this process would leave it waiting). The thread ends by itself
    when the watch is gone (its exchange was freed) or on stop().
    """

    def __init__(self, watch, timeout, where, abort, grace=1.0, period=None):
        self.timeout, self.where, self.abort, self.grace = float(timeout), where, abort, grace
        self.period = min(1.0, self.timeout / 10) if period is None else period
        self._watch = weakref.ref(watch)
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ghostmlp-stall-watchdog",
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self._stopped.set()

    def _run(self):
        me, seen, since = threading.get_ident(), None, 0.0
        while not self._stopped.wait(self.period):
            watch = self._watch()
            if watch is None:
                return
            call, now = watch.current(sys._current_frames(), me), time.monotonic()
            del watch
            # The frame itself is held until the next look, so that a later call cannot
            # reuse its identity.
            if call is None or seen is None or call[0] != seen[0]:
                seen, since = call, now
            elif now - since >= self.timeout:
                self._end(call[1], call[2], now - since)
                return

    def _end(self, op, layer, waited):
        layer = f"layer {layer}" if isinstance(layer, int) and layer >= 0 else "no layer"
        message = (f"ghostmlp: stall: {self.where} made no progress for {waited:.0f} s in "
                   f"{op} ({layer}); ending the job (stall_timeout {self.timeout:g} s)\n")
        os.write(2, message.encode())       # unbuffered: no lock another thread may hold
        time.sleep(self.grace)
        self.abort()
