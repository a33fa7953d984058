"""Sampled kernels on executors (threads, processes, dask, fakes that complete tasks out of
order): the same bits as in-process, early stop and progress in realization order,
cancellation on KeyboardInterrupt, refusals, ``make_executor`` and the CLI's --workers."""
from __future__ import annotations

import os
import sys
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numpy as np
import pytest

import rmt_deq as rd
from rmt_deq.activations import Activation
from rmt_deq.cli import main
from rmt_deq.errors import ConvergenceError, InvalidParameterError, MissingDependencyError
from rmt_deq.jobs.kernel import sampled_kernel_from_data
from rmt_deq.sampling.deq import sampled_ck, sampled_ntk
from rmt_deq.sampling.executors import BLAS_THREAD_VARIABLES, make_executor
from rmt_deq.sampling.explicit import sampled_explicit_ntk


class FakeExecutor(Executor):
    """Runs nothing on submit.  ``reverse``: the first ``result()`` asked for runs every
    task submitted so far, the last submitted first; ``lazy``: a ``result()`` runs that
    task only (the others stay pending, to be cancelled)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.queue: list = []
        self.ran: list[int] = []               # first realization of each task run
        self.futures: list[Future] = []

    def submit(self, fn, *args, **kwargs):
        future = _FakeFuture(self)
        self.queue.append((future, fn, args, kwargs))
        self.futures.append(future)
        return future

    def _run(self, item) -> None:
        future, fn, args, kwargs = item
        if not future.set_running_or_notify_cancel():
            return
        self.ran.append(args[1])
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:            # noqa: BLE001 - handed to the future
            future.set_exception(exc)

    def complete(self, future: Future) -> None:
        if self.mode == "reverse":
            while self.queue:
                self._run(self.queue.pop())
        else:
            for i, item in enumerate(self.queue):
                if item[0] is future:
                    self._run(self.queue.pop(i))
                    break


class _FakeFuture(Future):
    def __init__(self, executor: FakeExecutor) -> None:
        super().__init__()
        self._executor = executor

    def result(self, timeout=None):
        self._executor.complete(self)
        return super().result(timeout)


@pytest.fixture(scope="module")
def X():
    return rd.default_mixture(20, 2, rng=0).sample(12, rng=1).X


@pytest.fixture(scope="module")
def pool():
    with make_executor(workers=2) as ex:
        yield ex


def _same(a, b) -> None:
    """Bit-identical sampled kernels: matrices, error bars, the record of the run."""
    assert np.array_equal(a.matrix, b.matrix) and np.array_equal(a.ck, b.ck)
    assert set(a.groups) == set(b.groups)
    assert all(np.array_equal(a.groups[g], b.groups[g]) for g in a.groups)
    assert dict(a.error) == dict(b.error)
    assert dict(a.error_relative) == dict(b.error_relative)
    assert a.info.realizations == b.info.realizations
    assert a.info.stopped_early == b.info.stopped_early
    assert a.info.error_history == b.info.error_history
    assert a.info.gemm_flops == b.info.gemm_flops


def _fwd(k) -> list:
    return [r.report.iterations for r in k.info.forward]


def _one_blas_thread_here() -> bool:
    """Whether this process's BLAS runs one thread, as the pool's workers do: then their
    realizations are the in-process ones bit for bit (a multi-threaded OpenBLAS may round
    its matrix products differently in the last bit)."""
    try:
        import threadpoolctl
    except ImportError:
        return os.cpu_count() == 1 or all(os.environ.get(v) == "1" for v in
                                          ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
    return all(d["num_threads"] == 1 for d in threadpoolctl.threadpool_info()
               if d["user_api"] == "blas")


def _same_on_processes(in_process, processes: list) -> None:
    """Process-pool runs (one BLAS thread per worker) agree bit for bit among themselves
    whatever the task size and the tasks in flight; with the in-process run too when this
    process also runs one BLAS thread."""
    for got in processes[1:]:
        _same(processes[0], got)
    if _one_blas_thread_here():
        _same(in_process, processes[0])


def test_deq_ntk_is_the_same_on_every_executor(X, pool):
    kw = dict(width=40, realizations=7, batches=3, rng=1)
    ref = sampled_ntk(X, "tanh", 0.3, **kw)
    assert np.isfinite(ref.error["ntk"])
    with ThreadPoolExecutor(2) as threads:
        for task_size in (1, 3):
            _same(ref, sampled_ntk(X, "tanh", 0.3, executor=threads, task_size=task_size,
                                   **kw))
    fake = FakeExecutor("reverse")
    _same(ref, sampled_ntk(X, "tanh", 0.3, executor=fake, task_size=2, **kw))
    assert fake.ran == [6, 4, 2, 0]            # completed last task first, yet same bits
    # max_pending=1: one task at a time (one worker busy); 2 and 4: both workers
    runs = [sampled_ntk(X, "tanh", 0.3, executor=pool, task_size=t, max_pending=k, **kw)
            for t, k in ((1, 1), (2, 2), (1, 4))]
    _same_on_processes(ref, runs)
    assert _fwd(runs[0]) == _fwd(ref) and len(runs[0].info.adjoint) == 7


def test_control_variate_and_float32_on_processes(X, pool):
    kw = dict(width=40, realizations=4, rng=2, control_variate=True)
    _same_on_processes(sampled_ck(X, "relu", 0.3, **kw),
                       [sampled_ck(X, "relu", 0.3, executor=pool, max_pending=k, **kw)
                        for k in (1, 3)])
    kw = dict(width=40, realizations=4, rng=3, dtype="float32", family="symmetric")
    _same_on_processes(sampled_ck(X, "leaky_relu:0.1", 0.3, **kw),
                       [sampled_ck(X, "leaky_relu:0.1", 0.3, executor=pool, task_size=t,
                                   max_pending=k, **kw) for t, k in ((1, 1), (3, 2))])


def test_explicit_ntk_is_the_same_on_processes_and_out_of_order(X, pool):
    kw = dict(width=30, realizations=5, rng=7, groups=("v", "W2"))
    ref = sampled_explicit_ntk(X, ["relu", "tanh"], **kw)
    fake = FakeExecutor("reverse")
    _same(ref, sampled_explicit_ntk(X, ["relu", "tanh"], executor=fake, max_pending=5, **kw))
    assert fake.ran == [4, 3, 2, 1, 0]
    _same_on_processes(ref, [sampled_explicit_ntk(X, ["relu", "tanh"], executor=pool,
                                                  max_pending=k, **kw) for k in (1, 2)])


def test_early_stop_and_progress_follow_the_realizations(X):
    events = {}

    def recorder(key):
        events[key] = []
        return lambda p: events[key].append(
            (p.phase, p.realization, p.relative_error, p.forward_iterations,
             p.draws_done, p.draws_total))

    kw = dict(width=40, realizations=60, batches=4, rng=5, target_error=0.3)
    ref = sampled_ck(X, "tanh", 0.3, progress=recorder("ref"), **kw)
    assert ref.info.stopped_early and ref.info.realizations < 60   # the stop is exercised
    fake = FakeExecutor("reverse")
    got = sampled_ck(X, "tanh", 0.3, executor=fake, task_size=3, max_pending=3,
                     progress=recorder("fake"), **kw)
    _same(ref, got)
    assert events["fake"] == events["ref"]
    steps = [e[1] for e in events["ref"] if e[0] == "realizations"]
    assert steps == list(range(1, ref.info.realizations + 1))
    # tasks after the stop were submitted and run here, and their results discarded
    assert max(fake.ran) + 3 > ref.info.realizations


def test_keyboard_interrupt_cancels_the_pending_tasks(X):
    fake = FakeExecutor("lazy")

    def interrupt(p):
        if p.realization == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sampled_ck(X, "tanh", 0.3, width=30, realizations=12, rng=1, executor=fake,
                   task_size=2, max_pending=4, progress=interrupt)
    assert fake.ran == [0]                      # one task read, then interrupted
    assert len(fake.futures) == 4
    assert all(f.cancelled() for f in fake.futures[1:])


def test_a_failing_realization_is_reported_as_in_process(X):
    kw = dict(width=40, realizations=4, rng=1, max_iter=2, method="plain")
    with pytest.raises(ConvergenceError) as ref:
        sampled_ck(X, "tanh", 0.5, **kw)
    with ThreadPoolExecutor(2) as threads, pytest.raises(ConvergenceError) as got:
        sampled_ck(X, "tanh", 0.5, executor=threads, **kw)
    assert str(got.value) == str(ref.value) and "realization 0 of 4" in str(ref.value)
    assert got.value.residuals == ref.value.residuals and ref.value.residuals


def test_code_activations_run_on_threads_and_are_refused_by_process_pools(X, pool):
    sine = Activation.from_callable(lambda t: np.sin(t), name="local_sine")
    kw = dict(width=30, realizations=3, rng=1)
    with ThreadPoolExecutor(2) as threads:
        _same(sampled_ck(X, sine, 0.3, **kw), sampled_ck(X, sine, 0.3, executor=threads, **kw))
    with pytest.raises(InvalidParameterError, match="ThreadPoolExecutor"):
        sampled_ck(X, sine, 0.3, executor=pool, **kw)
    with pytest.raises(InvalidParameterError, match="ThreadPoolExecutor"):
        sampled_explicit_ntk(X, ["relu", sine], width=30, realizations=2, executor=pool)


def test_execution_options_are_validated(X):
    kw = dict(width=30, realizations=3, rng=1)
    with pytest.raises(InvalidParameterError, match="needs executor"):
        sampled_ck(X, "tanh", 0.3, task_size=2, **kw)
    with pytest.raises(InvalidParameterError, match="needs executor"):
        sampled_explicit_ntk(X, ["relu"], max_pending=2, **kw)
    with pytest.raises(InvalidParameterError, match="concurrent.futures.Executor"):
        sampled_ck(X, "tanh", 0.3, executor=object(), **kw)
    with ThreadPoolExecutor(1) as threads:
        for bad in ({"task_size": 0}, {"max_pending": -1}, {"task_size": 1.5}):
            with pytest.raises(InvalidParameterError):
                sampled_ck(X, "tanh", 0.3, executor=threads, **bad, **kw)
    threads.shutdown()
    with pytest.raises(InvalidParameterError, match="refused a task"):
        sampled_ck(X, "tanh", 0.3, executor=threads, **kw)
    # the results waiting for their turn count in the memory budget
    with ThreadPoolExecutor(1) as threads, pytest.raises(InvalidParameterError,
                                                          match="max_pending"):
        sampled_ck(X, "tanh", 0.3, executor=threads, max_pending=10 ** 6,
                   max_memory=2 ** 24, **kw)


def _blas_threads() -> list:
    """BLAS thread counts in a worker, once numpy is loaded (threadpoolctl)."""
    import numpy                                           # noqa: F401 - loads the BLAS
    import threadpoolctl
    return [d["num_threads"] for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas"]


def test_make_executor(pool):
    with make_executor() as ex, make_executor(workers=1) as ex1:
        assert ex is None and ex1 is None
    for bad in (0, -2, 1.5, True):
        with pytest.raises(InvalidParameterError, match="workers"):
            with make_executor(workers=bad):
                pass
    with pytest.raises(InvalidParameterError, match="not both"):
        with make_executor(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
    before = {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES}
    with make_executor(workers=2):
        pass
    assert {k: os.environ.get(k) for k in BLAS_THREAD_VARIABLES} == before
    assert pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result() == "1"


def test_process_workers_run_one_blas_thread(pool):
    pytest.importorskip("threadpoolctl")
    counts = pool.submit(_blas_threads).result()
    assert counts and set(counts) == {1}


def test_scheduler_without_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)       # import fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'rmt_deq\[dask\]'"):
        with make_executor(scheduler="tcp://127.0.0.1:8786"):
            pass
    with pytest.raises(InvalidParameterError, match="address"):
        with make_executor(scheduler=""):
            pass


def test_dask_cluster_gives_the_same_bits(X, pool):
    distributed = pytest.importorskip("distributed")
    kw = dict(width=40, realizations=5, batches=3, rng=4)
    ref = sampled_ntk(X, "tanh", 0.3, **kw)
    local = sampled_ntk(X, "tanh", 0.3, executor=pool, **kw)
    # worker processes (their nannies set one BLAS thread), so the tasks travel pickled
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with make_executor(scheduler=cluster.scheduler_address) as ex:
            _same_on_processes(ref, [local, sampled_ntk(X, "tanh", 0.3, executor=ex, **kw)])


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    mix = rd.default_mixture(30, 2, rng=3)
    data = mix.sample(16, rng=4)
    path = tmp_path_factory.mktemp("cli_workers") / "data.npz"
    np.savez(path, X=data.X, labels=data.labels)
    return path


def _kernel(path, out, *extra):
    return main(["kernel", "--data", str(path), "--activation", "tanh", "--sa", "0.3",
                 "--out", str(out), *extra])


def test_cli_workers_write_the_same_bytes(npz, tmp_path, pool):
    args = ("--method", "sampled", "--width", "40", "--realizations", "5", "--seed", "3")
    files = {}
    for workers in (None, "1", "2"):
        out = tmp_path / f"K{workers}.npy"
        assert _kernel(npz, out, *args, *(("--workers", workers) if workers else ())) == 0
        files[workers] = out.read_bytes()
    assert files[None] == files["1"]
    data = np.load(npz)
    lib = sampled_kernel_from_data(data["X"], "tanh", 0.3, labels=data["labels"], width=40,
                                   realizations=5, rng=3, executor=pool)
    assert np.array_equal(np.load(tmp_path / "K2.npy"), lib.matrix)   # one BLAS thread each
    if _one_blas_thread_here():
        assert files["1"] == files["2"]


def test_cli_workers_and_scheduler_need_method_sampled(npz, tmp_path, capsys):
    out = tmp_path / "K.npy"
    assert _kernel(npz, out, "--method", "exact", "--workers", "2") == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "--method sampled" in err and err.count("\n") == 1
    assert _kernel(npz, out, "--scheduler", "tcp://127.0.0.1:8786") == 2
    assert "--scheduler" in capsys.readouterr().err
    assert _kernel(npz, out, "--method", "sampled", "--width", "20", "--workers", "0") == 2
    assert "workers" in capsys.readouterr().err
    assert _kernel(npz, out, "--method", "sampled", "--width", "20", "--workers", "2",
                   "--scheduler", "tcp://127.0.0.1:8786") == 2
    assert "not both" in capsys.readouterr().err
    assert not out.exists()


def test_cli_network_route_runs_on_workers(tmp_path):
    """--workers applies to a designed network's sampled kernel too (never ignored)."""
    from rmt_deq.cli import main

    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 16)) / np.sqrt(24)
    data = tmp_path / "d.npz"
    np.savez(data, X=X)
    net = tmp_path / "net.json"
    assert main(["design", "--activation", "tanh", "--sa", "0.3", "--family", "htanh1",
                 "--out", str(net)]) == 0
    outs = []
    for extra in ([], ["--workers", "2"]):
        out = tmp_path / f"K{len(extra)}.npy"
        assert main(["kernel", "--network", str(net), "--data", str(data), "--method",
                     "sampled", "--width", "40", "--realizations", "4", "--seed", "1",
                     "--no-progress", "--out", str(out), *extra]) == 0
        outs.append(np.load(out))
    # the same realizations: equal up to the BLAS thread count's rounding
    scale = np.abs(outs[0]).sum()
    assert np.max(np.abs(outs[0] - outs[1])) <= 64 * np.finfo(float).eps * scale
