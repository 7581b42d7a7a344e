"""RayRunner: parallel branches on a Ray cluster, started locally or joined.

The runner only places work. Each branch is pickled on the driver
(:func:`~plait_ray._shipping.pack`), streamed through a pool of async actors (or a
task with its own resources), and its events are re-emitted and its result
applied on the driver. Retries, timeouts and cancellation stay the core's: Ray's
own retries are off, and a cancelled branch cancels its Ray task.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from plait.errors import DefinitionError
from plait.runners import default_runner, gather_first_error
from plait_ray._options import task_options_of, validate_options

if TYPE_CHECKING:
    from plait import StepOutput
    from plait.runners import Branch

__all__ = ["RayRunner", "runner_factory", "shared_runner"]

T = TypeVar("T")

#: a local cluster's object store unless told otherwise: bounded, small enough for a shared machine
DEFAULT_OBJECT_STORE_MEMORY = 512 * 1024 * 1024

#: environment for a local cluster, set before Ray is imported (its processes inherit it):
#: keep every socket on loopback, and send no usage statistics anywhere
_LOCAL_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}

_connection_lock = threading.Lock()


class RayRunner:
    """Run parallel branches on Ray.

    ``address`` (or ``RAY_ADDRESS``) joins an existing cluster; without one, a local
    cluster starts on first use, bound to loopback, without a dashboard, with its
    own temporary directory and token authentication, and a bounded object store
    (``num_cpus``, ``object_store_memory``, ``resources`` (custom resources the
    local node offers) and ``temp_dir`` configure it; ``init_options`` go to
    ``ray.init`` as they are). If Ray is already initialized in this process, the
    runner uses that connection. :meth:`close` (also run at exit) shuts down only
    what this runner started.

    Branches run on ``actors`` async actors, each running up to
    ``max_concurrency_per_actor`` branches at once on its event loop: right for
    I/O-bound steps (model calls). A branch whose step carries Ray options
    (:func:`plait_ray.ray_options`), or any branch when ``task_options`` is given,
    runs as a Ray task with those options (``num_cpus``, ``num_gpus``, ``resources``,
    ``memory``, ...). ``worker_setup`` runs once in every worker process before its
    first branch (configure tracing or logging there).

    :meth:`run_blocking` runs in this process (the driver), in plait's thread pool.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        object_store_memory: int | None = None,
        temp_dir: str | None = None,
        actors: int = 4,
        max_concurrency_per_actor: int = 100,
        resources: Mapping[str, float] | None = None,
        init_options: Mapping[str, Any] | None = None,
        task_options: Mapping[str, Any] | None = None,
        worker_setup: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(actors, int) or actors < 1:
            raise DefinitionError(f"RayRunner: actors must be an int >= 1, got {actors!r}")
        if not isinstance(max_concurrency_per_actor, int) or max_concurrency_per_actor < 1:
            raise DefinitionError(
                f"RayRunner: max_concurrency_per_actor must be an int >= 1, got {max_concurrency_per_actor!r}"
            )
        if worker_setup is not None and not callable(worker_setup):
            raise DefinitionError(f"RayRunner: worker_setup must be callable, got {worker_setup!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self.temp_dir = temp_dir
        self.actors = actors
        self.max_concurrency_per_actor = max_concurrency_per_actor
        self.resources = dict(resources) if resources else None
        self.init_options = dict(init_options) if init_options else {}
        self.task_options = validate_options("RayRunner(task_options=...)", task_options or {})
        self.worker_setup = worker_setup
        self._lock = threading.Lock()
        self._connected = False
        self._owns_cluster = False
        self._owns_connection = False
        self._own_temp_dir: str | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._setup_blob: bytes | None = None
        self._pool: _ActorPool | None = None
        self._task: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A Parallel(runner=RayRunner(...)) inside a shipped branch travels as its configuration.
        return (_rebuild, (self._configuration(),))

    def _configuration(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "num_cpus": self.num_cpus,
            "object_store_memory": self.object_store_memory,
            "temp_dir": self.temp_dir,
            "actors": self.actors,
            "max_concurrency_per_actor": self.max_concurrency_per_actor,
            "resources": self.resources,
            "init_options": self.init_options,
            "task_options": self.task_options,
            "worker_setup": self.worker_setup,
        }

    def __repr__(self) -> str:
        where = self.address or ("local" if not self._connected or self._owns_cluster else "existing")
        return f"RayRunner({where!r}, actors={self.actors})"

    # -- the Runner protocol -----------------------------------------------------------

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        return await default_runner().run_blocking(fn)

    async def run_branches(
        self, branches: Sequence[Branch], *, max_concurrency: int | None = None
    ) -> list[StepOutput]:
        if _inside_ray_worker():
            # Already on Ray: a nested Parallel runs in this worker rather than fanning out again.
            return await default_runner().run_branches(branches, max_concurrency=max_concurrency)
        # Start first: the local cluster's environment must be set before Ray (and its
        # cloudpickle) is imported. Then pickle every branch before submitting any, so an
        # unshippable step fails the run before anything runs.
        self.start()
        shipped = [(branch, _pack(branch), self._options_for(branch)) for branch in branches]
        if max_concurrency is None or max_concurrency >= len(shipped):
            return await gather_first_error([self._run_remote(*item) for item in shipped])
        semaphore = asyncio.Semaphore(max_concurrency)

        async def limited(branch: Branch, blob: bytes, options: dict[str, Any] | None) -> StepOutput:
            async with semaphore:
                return await self._run_remote(branch, blob, options)

        return await gather_first_error([limited(*item) for item in shipped])

    # -- connection --------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the cluster (starting a local one if needed) and create the actor pool.
        Called on first use; call it yourself to pay the start-up cost up front."""
        with self._lock:
            if self._connected:
                return
            with _connection_lock:
                self._connect()
            import ray
            from ray import cloudpickle

            from plait_ray._worker import BranchActor, run_branch_task

            self._setup_blob = cloudpickle.dumps(self.worker_setup) if self.worker_setup else None  # type: ignore[no-untyped-call]
            self._task = ray.remote(num_returns="streaming", max_retries=0)(run_branch_task)
            self._pool = _ActorPool(
                BranchActor, self.actors, self.max_concurrency_per_actor, self._setup_blob
            )
            self._connected = True
            atexit.register(self.close)

    def _connect(self) -> None:
        address = self.address or os.environ.get("RAY_ADDRESS")
        loaded = sys.modules.get("ray")
        if loaded is not None and loaded.is_initialized():
            return  # someone (the user, another runner) already connected this process
        if address is not None:
            import ray

            ray.init(address=address, **self.init_options)
            self._owns_connection = True
            return
        self._prepare_local_environment()
        import ray
        from ray._private import ray_constants

        if getattr(ray_constants, "ENABLE_RAY_CLUSTER", False):
            self._restore_environment()
            raise RuntimeError(
                "RayRunner will not start a local Ray cluster that listens on the network: Ray was "
                "imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 could be set. Set it in the "
                "environment before importing ray, or call ray.init(...) yourself first "
                "(RayRunner then uses that connection)."
            )
        if self.temp_dir is None:
            # A private (0700) parent: Ray makes its own session directories world-writable.
            self._own_temp_dir = tempfile.mkdtemp(prefix="plait-ray-")
            temp_dir = os.path.join(self._own_temp_dir, "r")
        else:
            temp_dir = self.temp_dir
        options: dict[str, Any] = {
            "address": "local",
            "num_cpus": self.num_cpus,
            "object_store_memory": self.object_store_memory or DEFAULT_OBJECT_STORE_MEMORY,
            "resources": self.resources,
            "include_dashboard": False,
            "_temp_dir": temp_dir,
            **self.init_options,
        }
        try:
            ray.init(**options)
        except BaseException:
            self._restore_environment()
            self._remove_temp_dir()
            raise
        self._owns_cluster = self._owns_connection = True

    def _prepare_local_environment(self) -> None:
        wanted = dict(_LOCAL_ENVIRONMENT)
        if "RAY_AUTH_MODE" not in os.environ:
            # Loopback is shared by every user of the machine: require a token, and keep it
            # in this process's environment (inherited by the cluster) instead of ~/.ray.
            wanted["RAY_AUTH_MODE"] = "token"
            if "RAY_AUTH_TOKEN" not in os.environ:
                wanted["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        for key, value in wanted.items():
            if key not in os.environ:
                self._saved_environment[key] = None
                os.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environment = {}

    def _remove_temp_dir(self) -> None:
        if self._own_temp_dir is not None:
            shutil.rmtree(self._own_temp_dir, ignore_errors=True)
            self._own_temp_dir = None

    def close(self) -> None:
        """Kill this runner's actors; shut down the cluster or connection only if this runner
        started it. The runner can be used again afterwards (it reconnects)."""
        with self._lock:
            if not self._connected:
                return
            self._connected = False
            atexit.unregister(self.close)
            import ray

            if self._pool is not None:
                self._pool.kill()
                self._pool = None
            if self._owns_connection:
                with _connection_lock:
                    ray.shutdown()
                self._owns_connection = False
            if self._owns_cluster:
                self._owns_cluster = False
                self._restore_environment()
                self._remove_temp_dir()

    # -- one branch --------------------------------------------------------------------

    def _options_for(self, branch: Branch) -> dict[str, Any] | None:
        step_options = task_options_of(branch.node)
        if not step_options and not self.task_options:
            return None
        return {**self.task_options, **step_options}

    async def _run_remote(self, branch: Branch, blob: bytes, options: dict[str, Any] | None) -> StepOutput:
        import ray
        from ray import cloudpickle
        from ray.exceptions import (
            ActorDiedError,
            ActorUnavailableError,
            NodeDiedError,
            ObjectLostError,
            RayError,
            WorkerCrashedError,
        )

        from plait_ray._shipping import ray_failure, remote_failure

        listening = branch.context.run.listening
        pool = self._pool
        assert pool is not None
        actor = None
        if options is None:
            actor = pool.acquire()
            stream = actor.run.remote(blob, listening)
        else:
            stream = self._task.options(**options).remote(blob, listening, self._setup_blob)
        next_seq = 0
        try:
            async for ref in stream:
                message = await ref
                kind = message[0]
                if kind == "events":
                    _, first, events = message
                    if first != next_seq:
                        raise RuntimeError(f"events of branch {branch.node.name!r} arrived out of order")
                    next_seq += len(events)
                    for event in events:
                        branch.emit(event)
                elif kind == "result":
                    return await branch.aapply(cloudpickle.loads(message[1]))
                else:
                    branch.failed(message[1].get("recording"))  # stored by the executor
                    raise remote_failure(branch, message[1])
            raise RuntimeError(f"the Ray worker ended branch {branch.node.name!r} without a result")
        except asyncio.CancelledError:
            # The core cancelled this branch (a sibling failed, a timeout, the caller): stop the
            # remote work too. Ray cancels the actor's coroutine (or interrupts the task).
            with contextlib.suppress(Exception):
                ray.cancel(stream)
            raise
        except (
            ActorDiedError,
            ActorUnavailableError,
            WorkerCrashedError,
            NodeDiedError,
            ObjectLostError,
        ) as exc:
            if actor is not None:
                pool.discard(actor)
            raise ray_failure(branch, exc, lost=True)
        except RayError as exc:
            raise ray_failure(branch, exc, lost=False)
        finally:
            if actor is not None:
                pool.release(actor)


class _ActorPool:
    """A fixed number of async actors; each branch goes to the least busy live one, and a
    dead actor is replaced when next needed."""

    def __init__(self, actor_class: Any, size: int, max_concurrency: int, setup: bytes | None) -> None:
        self._actor_class = actor_class
        self._max_concurrency = max_concurrency
        self._setup = setup
        self._slots: list[Any] = [None] * size
        self._busy: dict[int, int] = {}

    def _create(self) -> Any:
        # Ray never restarts an actor or retries its calls: the core decides retries.
        return self._actor_class.options(
            max_concurrency=self._max_concurrency, max_restarts=0, max_task_retries=0
        ).remote(self._setup)

    def acquire(self) -> Any:
        index = min(range(len(self._slots)), key=lambda i: self._busy.get(id(self._slots[i]), 0))
        actor = self._slots[index]
        if actor is None:
            actor = self._slots[index] = self._create()
        self._busy[id(actor)] = self._busy.get(id(actor), 0) + 1
        return actor

    def release(self, actor: Any) -> None:
        count = self._busy.get(id(actor), 0) - 1
        if count > 0:
            self._busy[id(actor)] = count
        else:
            self._busy.pop(id(actor), None)

    def discard(self, actor: Any) -> None:
        for index, slot in enumerate(self._slots):
            if slot is actor:
                self._slots[index] = None

    def actors(self) -> list[Any]:
        return [actor for actor in self._slots if actor is not None]

    def kill(self) -> None:
        import ray

        for actor in self.actors():
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._slots = [None] * len(self._slots)


def _pack(branch: Branch) -> bytes:
    from plait_ray._shipping import pack

    return pack(branch)


def _inside_ray_worker() -> bool:
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    from ray._private.worker import global_worker

    return bool(global_worker.mode == ray.WORKER_MODE)


def _rebuild(configuration: dict[str, Any]) -> RayRunner:
    return RayRunner(**configuration)


_shared: RayRunner | None = None
_shared_lock = threading.Lock()


def shared_runner() -> RayRunner:
    """The process-wide runner behind ``runner="ray"`` (local cluster, or ``RAY_ADDRESS``)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RayRunner()
        return _shared


def runner_factory(**options: Any) -> RayRunner:
    """The ``register_runners`` factory: the shared runner, or a new one with ``options``."""
    return RayRunner(**options) if options else shared_runner()
