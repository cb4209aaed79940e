# The step's exchanges in compiled code: persistent MPI requests started and waited
# without the GIL and without Python between the layers. Everything here is handed over
# by ghostmlp.exchange (StepExchange.compiled): the entry points MPI_Startall and
# MPI_Waitall of the library that mpi4py loaded, the requests' handles laid out as that
# library lays them out, room for their statuses, a tally the exchange counts from and an
# in-flight record the stall watchdog reads. Only array arguments cross here, so one build
# serves every MPI ABI (MPICH's integer handles, Open MPI's pointers).
from libc.string cimport memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

ctypedef int (*startall_f)(int, void*) noexcept nogil
ctypedef int (*waitall_f)(int, void*, void*) noexcept nogil


cdef struct Requests:
    int count               # 0: none here (the step calls the exchange's Python method)
    int op                  # the exchange's code for the call, named in a stall's message
    void* handles           # count MPI_Request
    void* statuses          # room for count MPI_Status
    double* tally           # [starts, seconds inside MPI]
    long long* inflight     # [waits begun, op waited for (0: none), its layer]
    startall_f startall
    waitall_f waitall


cdef inline int bind_requests(Requests* r, spec) except -1:
    """Fill r from exchange.CompiledRequests `spec` (None: no requests); its arrays must
    outlive r."""
    memset(r, 0, sizeof(Requests))
    if spec is None:
        return 0
    cdef size_t handles = spec.handles.ctypes.data, statuses = spec.statuses.ctypes.data
    cdef size_t tally = spec.tally.ctypes.data, inflight = spec.inflight.ctypes.data
    cdef size_t startall = spec.startall, waitall = spec.waitall
    r.count, r.op = spec.count, spec.op
    r.handles, r.statuses = <void*>handles, <void*>statuses
    r.tally, r.inflight = <double*>tally, <long long*>inflight
    r.startall, r.waitall = <startall_f>startall, <waitall_f>waitall
    return 0


cdef inline double seconds_now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + 1e-9 * t.tv_nsec


cdef inline int start_requests(Requests* r) noexcept nogil:
    """MPI_Startall of r's requests, counted; MPI's error code (0: success)."""
    cdef double begin = seconds_now()
    cdef int error = r.startall(r.count, r.handles)
    r.tally[0] += 1
    r.tally[1] += seconds_now() - begin
    return error


cdef inline int wait_requests(Requests* r, int layer) noexcept nogil:
    """MPI_Waitall of r's requests, timed and marked in flight meanwhile; MPI's error code."""
    cdef double begin = seconds_now()
    r.inflight[2] = layer
    r.inflight[1] = r.op
    r.inflight[0] += 1
    cdef int error = r.waitall(r.count, r.handles, r.statuses)
    r.inflight[1] = 0
    r.tally[1] += seconds_now() - begin
    return error
