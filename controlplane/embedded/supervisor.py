"""`dvp server` as a supervisor of one OS process per component (API server, DVCR,
controllers, node handler), so they use every core and never share an interpreter lock.

Start: each component is a named step, started in order and awaited until it reports ready
over a pipe (`child.py`); a step marked `with_previous` starts together with the one before it
(both need only what already serves), so independent components do not wait for each other. A
failure stops what already runs and names the step ("starting DVCR: listening on ...: address
in use"). Run: a component that dies is started again after a
delay from `SupervisorSettings.restart_backoff` (the delay grows while it keeps dying and
starts over once it stayed up). Stop (SIGTERM/SIGINT): components stop in reverse order, each
given `stop_timeout` before SIGKILL. Every state change goes to DATA_DIR/components.json,
which the API server shows in `/readyz?verbose`; systemd gets READY=1 (sd_notify) once all
components serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.common.componentstatus import ComponentStatus, State, write_statuses
from controlplane.embedded.config import ServerFlags
from controlplane.embedded.sdnotify import notify

log = logging.getLogger(__name__)


class ComponentError(RuntimeError):
    """A component failed to start; the message names it."""


def self_command() -> list[str]:
    """How to run `dvp` itself: the one-file binary, or this interpreter with the CLI module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "installer.cli.main"]


@dataclass
class ChildSpec:
    """One component: `name` as /readyz shows it, `title` for messages, `prepare` runs in the
    supervisor before every start (e.g. writing the component's kubeconfig), `on_ready` gets
    the URL the component reported; `with_previous`: start it together with the step before it
    instead of after it (it needs nothing that step provides)."""

    name: str
    title: str
    prepare: Callable[[], None] = lambda: None
    on_ready: Callable[[str], None] = lambda url: None
    with_previous: bool = False


@dataclass
class Child:
    spec: ChildSpec
    proc: asyncio.subprocess.Process | None = None
    state: State = "starting"
    message: str = "waiting for the components before it"
    restarts: int = 0
    since: float = field(default_factory=time.monotonic)

    def status(self) -> ComponentStatus:
        pid = self.proc.pid if self.proc is not None and self.proc.returncode is None else 0
        return ComponentStatus(self.spec.name, self.state, self.message, pid, self.restarts)


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(self, flags: ServerFlags, specs: list[ChildSpec], *, command: list[str] | None = None) -> None:
        self.flags = flags
        self.settings = flags.supervisor
        self.children = [Child(spec) for spec in specs]
        self.command = command or self_command()
        self.stopping = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []

    def _publish(self) -> None:
        with contextlib.suppress(OSError):
            write_statuses(self.flags.status_file, [c.status() for c in self.children])

    def _set(self, child: Child, state: State, message: str = "") -> None:
        child.state, child.message = state, message
        child.since = time.monotonic()
        self._publish()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        self.flags.data_dir.mkdir(parents=True, exist_ok=True)
        self._publish()
        try:
            for stage in _stages(self.children):
                if not await self._start_stage(stage):
                    return
            notify("READY=1\nSTATUS=all components ready")
            log.info("dvp server: all components ready")
            await self.stopping.wait()
        finally:
            notify("STOPPING=1")
            self.stopping.set()
            for task in self._watchers:
                task.cancel()
            for child in reversed(self.children):
                await self._stop(child)
            self._publish()

    async def _start_stage(self, stage: list[Child]) -> bool:
        """Start the stage's components together and wait until all serve (True), or the server
        is stopping (False); the first failure cancels the others' starts and is raised, named."""
        starts: dict[asyncio.Future[None], Child] = {
            asyncio.ensure_future(self._start(child)): child for child in stage}
        stopped: asyncio.Future[None] = asyncio.ensure_future(self._stopped())
        pending = set(starts)
        failed: tuple[Child, BaseException] | None = None
        while pending and failed is None and not stopped.done():
            done, _ = await asyncio.wait(pending | {stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in done & pending:
                pending.discard(task)
                if (error := task.exception()) is not None and failed is None:
                    failed = (starts[task], error)
        stopped.cancel()
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # the first failure is the one to report
                await task
        if failed is not None:
            raise ComponentError(f"starting {failed[0].spec.title}: {failed[1]}") from failed[1]
        if pending:
            return False
        self._watchers.extend(asyncio.ensure_future(self._watch(child)) for child in stage)
        return True

    async def _stopped(self) -> None:
        await self.stopping.wait()

    async def _spawn(self, child: Child) -> str:
        """Start the component's process and wait for its readiness line; its URL."""
        await asyncio.to_thread(child.spec.prepare)
        read_fd, write_fd = os.pipe()
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env["DVP_SUPERVISOR_PID"] = str(os.getpid())  # a child that finds itself orphaned exits
        try:
            child.proc = await asyncio.create_subprocess_exec(
                *self.command, "__component", child.spec.name, "--flags", self.flags.to_json(),
                "--ready-fd", str(write_fd), pass_fds=(write_fd,), env=env, start_new_session=True)
        finally:
            os.close(write_fd)
        self._publish()
        try:
            line = await asyncio.wait_for(asyncio.to_thread(_read_line, read_fd), self.settings.start_timeout)
        except TimeoutError:
            await self._terminate(child.proc)
            raise ComponentError(f"did not report ready within {self.settings.start_timeout:.0f}s") from None
        finally:
            os.close(read_fd)
        doc = json.loads(line) if line.strip() else {}
        if not doc.get("ready"):
            code = await child.proc.wait()
            raise ComponentError(str(doc.get("error") or f"{_exit_reason(code)} before it was ready"))
        return str(doc.get("url", ""))

    async def _start(self, child: Child) -> None:
        self._set(child, "starting", "starting")
        log.info("dvp server: starting %s", child.spec.title)
        url = await self._spawn(child)
        self._set(child, "ready")
        child.spec.on_ready(url)

    async def _watch(self, child: Child) -> None:
        """Restart the component whenever its process ends, with backoff."""
        failures = 0
        while not self.stopping.is_set():
            assert child.proc is not None
            code: int | None = await child.proc.wait()
            if self.stopping.is_set():
                return
            if time.monotonic() - child.since >= self.settings.healthy_after:
                failures = 0
            while not self.stopping.is_set():
                backoff = self.settings.restart_backoff
                delay = backoff[min(failures, len(backoff) - 1)]
                failures += 1
                reason = f"{_exit_reason(code)}; restarting in {delay:g}s"
                log.warning("dvp server: %s %s", child.spec.title, reason)
                self._set(child, "failed", reason)
                await asyncio.sleep(delay)
                if self.stopping.is_set():
                    return
                child.restarts += 1
                try:
                    await self._start(child)
                    break
                except Exception as exc:
                    code = child.proc.returncode if child.proc is not None else None
                    log.warning("dvp server: restarting %s: %s", child.spec.title, exc)
                    self._set(child, "failed", f"restart failed: {exc}")

    async def _terminate(self, proc: asyncio.subprocess.Process | None) -> None:
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.settings.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _stop(self, child: Child) -> None:
        if child.proc is None:
            return
        log.info("dvp server: stopping %s", child.spec.title)
        await self._terminate(child.proc)
        child.state, child.message = "stopped", "dvp server stopped"


def _stages(children: list[Child]) -> list[list[Child]]:
    """The children in start order, grouped: a `with_previous` child joins the group before it."""
    stages: list[list[Child]] = []
    for child in children:
        if child.spec.with_previous and stages:
            stages[-1].append(child)
        else:
            stages.append([child])
    return stages


def _read_line(fd: int) -> bytes:
    """The first line written to the pipe, or b"" when every writer closed it."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data
