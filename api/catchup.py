"""What a reader needs to know it is current: the pipeline's lag ahead of the views.

``pipeline(services)`` is ``{"inbound": N, "relay": N}`` (CONTRACT section 11). In
Kafka mode it comes from ``consumers.pipeline.Pipeline`` (built by the composition
root into ``services.extras["pipeline"]``). In embedded mode both are 0, always:
``POST /v1/events`` stores before it answers (nothing waits on an inbound queue)
and there is no relay; the views' own lag is in each item.
"""

from __future__ import annotations

from typing import Protocol

from api.deps import Services

EMBEDDED = {"inbound": 0, "relay": 0}


class PipelineLike(Protocol):
    def status(self) -> dict[str, int]: ...


def pipeline(services: Services) -> dict[str, int]:
    source: PipelineLike | None = services.extras.get("pipeline")
    if source is None:
        return dict(EMBEDDED)
    return source.status()
