"""Run a suite's training runs as Ray tasks, on one machine or a whole cluster.

The driver (``ablate run ... --executor ray``) keeps everything but the training:
it expands the suite, skips stored runs, shows progress and is the only writer of
``results/<suite>/``. Each pending run becomes one Ray task that calls
:func:`ablate.run.executors.worker.execute_spec` on a worker and returns its
:class:`~ablate.results.store.Record`; records stream back with ``ray.wait`` in the order
runs finish.

Failures:
    * ``execute`` never raises for a problem of the run itself (the record says
      ``failed``/``oom``/...), so application exceptions are not retried.
    * A worker process or node that dies is retried by Ray up to ``max_retries``
      times; after that the run is recorded as ``failed`` ("worker died after N
      retries: ...") or ``oom`` when Ray's memory monitor killed it.
    * :meth:`RayExecutor.close` (Ctrl-C) force-cancels every outstanding task;
      records already yielded are stored, and the next ``ablate run`` resumes.

Connecting: ``address=None`` uses ``$RAY_ADDRESS`` when set and otherwise starts a
private local instance (no dashboard) that is shut down again when
the executor finishes; ``"local"`` always starts one; ``"auto"``,
``"host:6379"`` or ``"ray://host:10001"`` connect to an existing cluster, which
is never shut down by ``ablate``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Callable, Iterator

import torch

from ablate.core.errors import UserError
from ablate.run.executors.base import Executor
from ablate.run.executors.worker import execute_spec
from ablate.run.executors.registry import EXECUTORS
from ablate.results.store import Record
from ablate.suite import RunSpec

INSTALL_HINT = 'pip install "ablate[ray]"'


class RayExecutorError(UserError):
    """A Ray setup problem the user can fix (printed by the CLI without a traceback)."""


class RayUnavailable(RayExecutorError, ImportError):
    """Ray is not installed."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailable` with the install command."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from error
    return ray


def _run_on_worker(function: Callable[[RunSpec], Record], spec: RunSpec, threads: int) -> Record:
    """The body of one Ray task: ``function(spec)`` with ``threads`` torch threads."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # a reused worker already ran torch work: the setting stays from its first task
        pass
    return function(spec)


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Each run is a Ray task reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs.

    Args:
        workers: ignored (how many runs go at once follows the cluster's free resources).
        address: ``None`` ($RAY_ADDRESS or a private local instance), ``"local"``,
            ``"auto"``, ``"host:port"`` or ``"ray://host:10001"``.
        num_cpus: CPUs reserved per run; also its torch threads (``int``, at least 1).
        num_gpus: GPUs per run (fractions share a GPU); Ray sets ``CUDA_VISIBLE_DEVICES``,
            so ``device = "auto"`` runs on the GPU it was given, or on CPU with 0.
        max_retries: how often Ray reruns a task whose worker process or node died.
        threads: torch threads per run, overriding the ``num_cpus`` default.
        max_in_flight: submitted-but-unfinished tasks at most (the rest wait in the
            driver), so huge suites do not flood the scheduler.
        init_options: extra ``ray.init`` keyword arguments, e.g. ``runtime_env`` for a
            cluster, or ``num_cpus``/``_temp_dir`` for a local instance.
        function: what each task calls on its worker (``execute_spec``; tests inject
            one that kills its worker).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_retries: int = 2,
        threads: int | None = None,
        max_in_flight: int = 1000,
        init_options: dict[str, Any] | None = None,
        function: Callable[[RunSpec], Record] = execute_spec,
    ) -> None:
        if num_cpus is None or num_cpus < 0 or num_gpus is None or num_gpus < 0:
            raise RayExecutorError(f"--num-cpus and --num-gpus must be >= 0, got {num_cpus} and {num_gpus}")
        if max_retries < 0 or max_in_flight < 1 or (threads is not None and threads < 1):
            raise RayExecutorError("max_retries must be >= 0, max_in_flight and threads >= 1")
        self.ray = import_ray()
        self.address = address
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.max_retries = int(max_retries)
        self.threads = int(threads) if threads else max(1, int(num_cpus))
        self.max_in_flight = int(max_in_flight)
        self.init_options = dict(init_options or {})
        self.function = function
        self._pending: dict[Any, RunSpec] = {}
        self._started_instance = False

    # ---------------------------------------------------------------- connection
    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # someone (a test, a notebook) already chose the cluster
            return
        address = self.address
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or "local"
        try:
            if address == "local":
                options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
                ray.init(address="local", **{**options, **self.init_options})
                self._started_instance = True
            elif address.startswith("ray://"):
                ray.init(address=address, **self.init_options)
            else:
                ray.init(address=address, **{"logging_level": logging.WARNING, **self.init_options})
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as error:
            raise RayExecutorError(
                f"could not connect to Ray at {address!r}: {str(error).rstrip('.')}. Start a cluster with 'ray start --head' "
                "and pass --address auto (on a cluster node) or --address ray://HEAD:10001"
            ) from None

    def _check_resources(self) -> None:
        """Warn when no node could ever run a task (Ray would keep it pending, e.g. --num-gpus 1 without GPUs)."""
        try:
            nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        except Exception:  # noqa: BLE001 - only a courtesy check (e.g. limited in client mode)
            return
        fits = any(r.get("CPU", 0) >= self.num_cpus and r.get("GPU", 0) >= self.num_gpus for r in nodes)
        if nodes and not fits:
            warnings.warn(
                f"no node of this Ray cluster has {self.num_cpus:g} CPUs and {self.num_gpus:g} GPUs; runs stay "
                "pending until such a node joins (autoscaling). Ctrl-C stops; lower --num-cpus/--num-gpus otherwise.",
                RuntimeWarning, stacklevel=3,
            )

    # ----------------------------------------------------------------- execution
    def run(self, specs: list[RunSpec]) -> Iterator[Record]:
        """Submit ``specs`` as Ray tasks and yield each record as its task finishes."""
        if not specs:
            return
        ray = self.ray
        self._connect()
        self._check_resources()
        task = ray.remote(_run_on_worker).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries, retry_exceptions=False,
            name="ablate-run",
        )
        queue = list(specs)
        queue.reverse()  # pop() submits in plan order
        try:
            while queue or self._pending:
                while queue and len(self._pending) < self.max_in_flight:
                    spec = queue.pop()
                    self._pending[task.remote(self.function, spec, self.threads)] = spec
                done, _ = ray.wait(list(self._pending), num_returns=1)
                spec = self._pending.pop(done[0])
                yield self._collect(done[0], spec)
        finally:  # normal end, Ctrl-C, or the consumer stopped early: nothing keeps running
            self.close()

    def _collect(self, ref: Any, spec: RunSpec) -> Record:
        """The task's record, or a failed/oom record saying why the task itself failed."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as error:  # raised inside the task (execute itself catches run problems)
            cause = error.cause if error.cause is not None else error
            if isinstance(cause, exceptions.RayError):  # a system failure surfaced through the task
                return self._system_failure(spec, cause)
            return _failed(spec, f"task raised {_first_line(cause)}\n{error}")
        except exceptions.RayError as error:
            return self._system_failure(spec, error)

    def _system_failure(self, spec: RunSpec, error: BaseException) -> Record:
        exceptions = self.ray.exceptions
        if isinstance(error, exceptions.OutOfMemoryError):
            return _failed(spec, f"killed by Ray's memory monitor after {self.max_retries} retries: "
                                 f"{_first_line(error)}", status="oom")
        if isinstance(error, (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.ObjectLostError,
                              exceptions.LocalRayletDiedError, exceptions.RayActorError)):
            return _failed(spec, f"worker died after {self.max_retries} retries: {_first_line(error)}")
        if "No module named 'ablate" in str(error):
            return _failed(spec, "the Ray worker cannot import ablate: install the same ablate version (and its "
                                 f"data) on every node of the cluster ({_first_line(error)})")
        return _failed(spec, f"Ray error: {_first_line(error)}")

    def close(self) -> None:
        """Force-cancel outstanding tasks; shut down the local instance this executor started."""
        pending, self._pending = list(self._pending), {}
        for ref in pending:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished, or the cluster is gone
                pass
        if self._started_instance:
            self._started_instance = False
            self.ray.shutdown()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _failed(spec: RunSpec, reason: str, *, status: str = "failed") -> Record:
    return Record(run_id=spec.run_id, suite=spec.suite, kind=spec.kind, status=status, config=spec.config,
                  axes=spec.axes, reason=reason)
