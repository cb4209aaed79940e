"""The command's ranks agreeing on errors: rank-local steps checked on every rank (Agreement.run), and fail."""
import sys
import time

from ghostmlp.watchdog import Watch, Watchdog, watched

# How long a failing rank waits for the others to fail too before it aborts the job.
AGREE_SECONDS = 5
# What a rank-local step may raise that its agreement turns into one error on every rank.
LOCAL_ERRORS = (OSError, ValueError)


class RanksFailed(RuntimeError):
    """A rank-local step failed on some ranks: raised on every rank with the same message."""


class Agreement:
    """The command's ranks agreeing on errors, on a communicator of their own.

    comm: the command's communicator, or None (serial: run() only calls the step). run()
    gathers on a duplicate of comm of its own, and `comm` is another, for fail() alone: so
    a rank failing outside any agreement (fail's barrier) never meets a rank inside one,
    nor either a call of the library, in a collective. Its waits are watched once
    watch_stalls(timeout) is called: when a rank waits that long for the others (one of
    them stopped or gone), the stall watchdog (ghostmlp.watchdog) names it and ends the job.
    """

    def __init__(self, comm):
        self.comm = comm.Dup() if comm is not None else None        # fail()'s
        self._steps = comm.Dup() if comm is not None else None      # run()'s
        self.watch, self.watchdog = Watch(), None

    def watch_stalls(self, stall_timeout):
        """Start the watchdog of the agreement's waits (stall_timeout seconds, checked > 0)."""
        if self.comm is not None and stall_timeout and self.watchdog is None:
            from ghostmlp.exchange import abort, where
            self.watchdog = Watchdog(self.watch, stall_timeout, where(), abort)

    def run(self, what, step):
        """step() on every rank, then the verdict of all: step's result where it succeeded
        everywhere, else RanksFailed on every rank, naming each failing rank, its host and
        its error (an error of every rank alike is named once, without ranks).

        what: the step, as the watchdog names a wait for it ("mapping the data"). Only
        LOCAL_ERRORS are agreed on; anything else is a bug and propagates (fail's path).
        """
        try:
            result, failure = step(), None
        except LOCAL_ERRORS as error:
            if self.comm is None:
                raise
            result, failure = None, str(error)
        if self.comm is None:
            return result
        failures = self._allgather(failure, f"agreement on {what}")
        if any(found is not None for found in failures):
            raise RanksFailed(describe(failures))
        return result

    @watched(layer=None)
    def _allgather(self, failure, op):
        """Every rank's (failure or None, host); op names the wait for the watchdog."""
        from mpi4py import MPI
        gathered = self._steps.allgather((failure, MPI.Get_processor_name()))
        return [(message, host) if message is not None else None for message, host in gathered]


def describe(failures):
    """One line per distinct message of failures[rank] ((message, host) or None): the
    message alone when every rank has it, else prefixed with the ranks and hosts."""
    found = {}
    for rank, failure in enumerate(failures):
        if failure is not None:
            message, host = failure
            found.setdefault(message, []).append((rank, host))
    if len(found) == 1 and len(next(iter(found.values()))) == len(failures):
        return next(iter(found))
    lines = []
    for message, where in found.items():
        ranks = ", ".join(str(rank) for rank, _ in where)
        hosts = ", ".join(dict.fromkeys(host for _, host in where))
        lines.append(f"{'rank' if len(where) == 1 else 'ranks'} {ranks} of {len(failures)} "
                     f"(host {hosts}): {message}")
    return "; ".join(lines)


def fail(message, comm, agree_seconds=AGREE_SECONDS):
    """Print the error and return 1; on several ranks, agree first on who has it.

    comm: a communicator that only fail uses (Agreement.comm). When every rank
    fails within agree_seconds (a bad file read on rank 0 and broadcast, an option every
    rank checks, a rank-local step agreed on by Agreement.run), they meet in a non-blocking
    barrier, rank 0 prints each distinct message once and every rank returns 1: the job
    ends normally, so the launcher forwards the message before it ends. Otherwise (the last
    resort: a rank fails while the others compute or wait in the library) the failing rank
    prints its message, naming itself, waits a second for the launcher to forward it, and
    ends the job with MPI_Abort (no rank is left waiting).
    """
    message = message.rstrip()
    if comm is None:
        print(message, file=sys.stderr, flush=True)
        return 1
    request, deadline = comm.Ibarrier(), time.monotonic() + agree_seconds
    while not request.Test():
        if time.monotonic() > deadline:
            print(f"{message} (rank {comm.Get_rank()} of {comm.Get_size()})", file=sys.stderr,
                  flush=True)
            time.sleep(1)
            comm.Abort(1)
        time.sleep(0.01)
    messages = comm.gather(message, root=0)
    if comm.Get_rank() == 0:
        for text in dict.fromkeys(messages):
            ranks = [rank for rank, other in enumerate(messages) if other == text]
            where = "" if len(ranks) == len(messages) else f" (ranks {ranks})"
            print(text + where, file=sys.stderr, flush=True)
    comm.Barrier()
    return 1
