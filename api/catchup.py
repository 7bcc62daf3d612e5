"""What a reader needs to know it is current: the pipeline's lag ahead of the views.

``pipeline(services)`` is ``{"inbound": N, "relay": N}`` (CONTRACT section 11). In
Kafka mode it comes from ``consumers.pipeline.Pipeline`` (built by the composition
root into ``services.extras["pipeline"]``). In embedded mode both are 0, always:
``POST /v1/events`` stores before it answers (nothing waits on an inbound queue)
and there is no relay; the views' own lag is in each item.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from api.deps import Services

log = logging.getLogger(__name__)
EMBEDDED = {"inbound": 0, "relay": 0, "parked": 0}


MAX_AGE_S = 1.0  # how old a pipeline measurement the API may answer with


class PipelineLike(Protocol):
    def recent(self, max_age_s: float) -> dict[str, int]: ...


def pipeline(services: Services) -> dict[str, Any]:
    """The pipeline's lag, measured at most ``MAX_AGE_S`` ago; with the broker or the store
    unreachable, nulls and the error (never a 5xx: the views' own status still answers).
    A caller reads the views' lags after this, never before: see consumers.pipeline."""
    source: PipelineLike | None = services.extras.get("pipeline")
    if source is None:
        return dict(EMBEDDED)
    try:
        return dict(source.recent(MAX_AGE_S))
    except Exception as e:  # a broker restart, a coordinator moving: reported, not raised
        log.warning("pipeline lag not available: %s", e)
        return {"inbound": None, "relay": None, "parked": None,
                "error": f"{type(e).__name__}: {e}"}
