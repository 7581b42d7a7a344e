"""``create_app``: the FastAPI application that serves workflows, their runs and events.

The routes (JSON, errors as ``{"error": {"type", "message"}}``) are in :mod:`plait_serve._routes`;
this module puts the app together: the workflows by id, one storage for all of them, the
runs this process executes (:class:`plait_serve._live.LiveRuns`), the guards (token, body
limit, CORS) and the error handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from plait import DefinitionError, PlaitError, Workflow
from plait.cli import DEFAULT_STORAGE
from plait.storage import RunClaimedError, Storage, StorageError, resolve_storage, url_secrets
from plait_serve._live import LiveRuns
from plait_serve._security import BodyLimit, TokenAuth, error_body

__all__ = ["DEFAULT_BODY_LIMIT", "ServeState", "create_app"]

#: the largest request body the server reads, in bytes, unless told otherwise (1 MiB)
DEFAULT_BODY_LIMIT = 1024 * 1024


class ServeError(Exception):
    """An error a route answers with ``status`` and ``{"error": {"type", "message"}}``."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


@dataclass
class ServeState:
    """What the routes share: the served workflows by id, the storage, the live runs."""

    workflows: dict[str, Workflow]
    storage: Storage
    secrets: list[str] = field(default_factory=list)
    poll_interval: float = 0.25
    idle_timeout: float = 300.0
    #: the runs executing, per event loop the app is served on (one, unless it is served anew)
    live: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveRuns] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def workflow(self, name: str) -> Workflow:
        """The served workflow with this id or name (404 otherwise)."""
        found = self.workflows.get(name) or next((w for w in self.workflows.values() if w.name == name), None)
        if found is None:
            served = ", ".join(sorted(self.workflows)) or "none"
            raise ServeError(404, "not_found", f"no workflow {name!r} is served here (served: {served})")
        return found

    ready: bool = False

    def runs(self) -> LiveRuns:
        """The runs this process executes (made on first use: an app mounted in another one
        gets no lifespan events of its own; made again when the app is served anew, on
        another event loop)."""
        loop = asyncio.get_running_loop()
        live = self.live.get(loop)
        if live is None:
            live = self.live[loop] = LiveRuns(
                self.storage, poll_interval=self.poll_interval, idle_timeout=self.idle_timeout
            )
        return live

    async def setup(self) -> None:
        """Set the storage up once (idempotent in every backend)."""
        if not self.ready:
            await self.storage.setup()
            self.ready = True


def _one_storage(workflows: Sequence[Workflow], storage: Storage | str | None) -> Storage:
    """The storage every served workflow uses from now on (each gets it unless it has one)."""
    chosen = storage
    if chosen is None:
        own = [w.storage for w in workflows if w.storage is not None]
        chosen = own[0] if own else os.environ.get("PLAIT_STORAGE") or DEFAULT_STORAGE
    resolved = resolve_storage(chosen)
    assert resolved is not None
    for workflow in workflows:
        theirs = workflow.storage
        if storage is None and theirs is not None and theirs is not chosen and theirs != chosen:
            raise DefinitionError(
                f"Workflow {workflow.name!r} has storage {theirs!r}, another workflow served with it "
                f"{chosen!r}: a server has one storage; pass storage= to create_app (or --storage)"
            )
        workflow.storage = resolved  # the server's object, opened once, from the next run on
        # the server stores every event as it happens (see LiveRuns), not at the run's end
        workflow.store_events = False
    return resolved


def create_app(
    workflows: Sequence[Workflow],
    storage: Storage | str | None = None,
    *,
    token: str | None = None,
    cors_origins: Sequence[str] = (),
    body_limit: int = DEFAULT_BODY_LIMIT,
    poll_interval: float = 0.25,
    stream_idle_timeout: float = 300.0,
    title: str = "plait",
) -> FastAPI:
    """A FastAPI app serving ``workflows`` (mount it in your own app, or run it with uvicorn).

    ``storage`` (a :class:`~plait.storage.Storage` or URL; default: the workflows' own, else
    ``$PLAIT_STORAGE``, else ``sqlite:///.plait/plait.db``) becomes every served workflow's
    storage; the server stores each run's events as they happen, so any server process that
    shares the storage can stream them (``poll_interval`` seconds between looks at runs
    another process executes, backing off to ``8 * poll_interval`` while nothing comes; such
    a stream ends after ``stream_idle_timeout`` seconds without an event, and the client
    reconnects with ``Last-Event-ID``). ``token`` requires ``Authorization: Bearer TOKEN`` on every
    request; ``cors_origins`` allows browsers on those origins (none by default);
    ``body_limit`` caps request bodies (bytes, 413 above it).
    """
    items = list(workflows)
    if not items or not all(isinstance(w, Workflow) for w in items):
        raise DefinitionError(f"create_app: expected a list of Workflow objects, got {workflows!r}")
    by_id: dict[str, Workflow] = {}
    for workflow in items:
        if workflow.id in by_id:
            raise DefinitionError(f"create_app: two workflows have the id {workflow.id!r}; give one id=")
        by_id[workflow.id] = workflow
    if body_limit <= 0:
        raise DefinitionError(
            f"create_app: body_limit must be a positive number of bytes, got {body_limit!r}"
        )
    for option, value in (("poll_interval", poll_interval), ("stream_idle_timeout", stream_idle_timeout)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise DefinitionError(f"create_app: {option} must be a positive number of seconds, got {value!r}")
    resolved = _one_storage(items, storage)
    secrets = [s for s in (token,) if s] + url_secrets(resolved.url)
    state = ServeState(
        by_id, resolved, secrets=secrets, poll_interval=poll_interval, idle_timeout=stream_idle_timeout
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.setup()
        try:
            yield
        finally:
            live = state.live.pop(asyncio.get_running_loop(), None)
            if live is not None:
                await live.aclose()

    app = FastAPI(
        title=title,
        description="Workflows over HTTP: start runs, follow their events (SSE), approve, resume, cancel.",
        lifespan=lifespan,
    )
    app.state.plait = state
    _error_handlers(app, state)
    from plait_serve._routes import router

    app.include_router(router)
    from plait_serve._page import PAGE_PATHS, mount_page

    mount_page(app)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(BodyLimit, limit=body_limit)
    if token:
        app.add_middleware(TokenAuth, token=token, open_paths=PAGE_PATHS)  # outermost: runs first
    return app


def _error_handlers(app: FastAPI, state: ServeState) -> None:
    def answer(status: int, kind: str, message: str) -> JSONResponse:
        return JSONResponse(error_body(kind, message, state.secrets), status_code=status)

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return answer(exc.status, exc.kind, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: list[Any] = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return answer(
                400, "invalid_json", f"the request body is not valid JSON: {errors[0].get('ctx') or ''}"
            )
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors]
        return answer(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return answer(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(DefinitionError)
    async def definition_error(request: Request, exc: DefinitionError) -> JSONResponse:
        return answer(422, "invalid_input", str(exc))

    @app.exception_handler(RunClaimedError)
    async def claimed(request: Request, exc: RunClaimedError) -> JSONResponse:
        return answer(409, "run_claimed", str(exc))

    @app.exception_handler(StorageError)
    async def storage_down(request: Request, exc: StorageError) -> JSONResponse:
        return answer(503, "storage_error", str(exc))

    @app.exception_handler(PlaitError)
    async def plait_error(request: Request, exc: PlaitError) -> JSONResponse:
        return answer(500, type(exc).__name__, str(exc))
