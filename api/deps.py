"""What routes get from the composition root, through ``app.state`` and ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, Request

from domain.application import PmoApplication
from ingest.service import Inbound, Result
from pmo.settings import Settings

if TYPE_CHECKING:
    from projections.service import ProjectionService


class Ingestor(Protocol):
    """Embedded: ``IngestService`` (stores now). Kafka mode: publishes to pmo.inbound (queued)."""

    def submit(self, messages: Sequence[Inbound]) -> list[Result]: ...


class Runner(Protocol):
    """What feeds the views in embedded mode: ``EmbeddedRunner`` (a thread) or
    ``RunnerProcess`` (a child process)."""

    error: str | None

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def wake(self) -> None: ...

    def wait_for(self, position: int, timeout: float) -> bool: ...

    def rebuild(self, name: str) -> None: ...

    def status(self) -> list[dict[str, Any]]: ...


@dataclass
class Services:
    settings: Settings
    app: PmoApplication
    ingest: Ingestor
    projections: ProjectionService
    runner: Runner | None = None  # None in Kafka mode: consumers feed the views
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Stop the runner and close both stores (their connection pools with them)."""
        if self.runner is not None:
            self.runner.stop()
        self.projections.close()
        self.app.close()


async def get_services(request: Request) -> Services:
    # async: a sync dependency costs a thread-pool hop on every request, even for async routes.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
