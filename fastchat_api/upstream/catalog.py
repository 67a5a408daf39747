"""What the controller's workers serve: the model lists, the outage rule, and what each worker
says about its model (template, context length).

FastChat's own server asks the controller for the model list on every request and the worker
for its template on every chat. Here both are kept briefly (see ``cache``), served stale through
a controller outage for ``controller.outage_grace`` seconds, and a worker's facts are dropped
the moment it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Callable

from .. import errors, metrics
from ..config import ControllerConfig
from ..conversation import Template
from .cache import Cached, Clock
from .client import UpstreamClient

# Seconds a readiness answer of the controller (its model list, or its failure) is reused.
READY_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """What a worker says about a model it serves: stable for the worker's lifetime."""

    template: Template
    context_length: int  # tokens


class Catalog:
    """The controller's model lists and the workers' facts, cached."""

    def __init__(
        self, client: UpstreamClient, config: ControllerConfig, *, facts_ttl: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = client
        self._model_ttl = config.model_list_ttl
        self._outage_grace = config.outage_grace
        self._facts_ttl = facts_ttl
        self._clock = clock
        self._models: list[str] = []
        self._missing_since: dict[str, float] = {}  # models the controller stopped listing
        self._model_list = Cached(self._list_models, ttl=self._model_ttl, max_age=self._outage_grace,
                                  name="the model list", clock=clock)
        self._multimodal = Cached(client.list_multimodal_models, ttl=self._model_ttl,
                                  max_age=self._outage_grace, name="the multimodal model list",
                                  clock=clock)
        self._facts: dict[tuple[str, str], Cached[WorkerFacts]] = {}
        self._probe = Cached(self._probe_controller, ttl=READY_WINDOW, max_age=READY_WINDOW,
                             name="the readiness probe", clock=clock)

    def close(self) -> None:
        """Stop refreshes in flight (on shutdown)."""
        self._model_list.cancel()
        self._multimodal.cancel()
        self._probe.cancel()
        for cached in self._facts.values():
            cached.cancel()

    # -- the controller's lists -------------------------------------------------------------

    async def models(self, *, poll_workers: bool = False) -> list[str]:
        """Model names the controller's workers serve, sorted; fresh for ``model_list_ttl``,
        then refreshed in the background, served stale through a controller outage for
        ``outage_grace``.

        With ``poll_workers`` (``/v1/models``) a list older than ``model_list_ttl`` is fetched
        after asking the controller to re-poll its workers, as FastChat's ``/v1/models`` does
        every time, so that dead workers stop being listed.
        """
        if not poll_workers or self._model_list.age < self._model_ttl:
            return await self._model_list.get()
        with contextlib.suppress(errors.APIError):  # the listing that follows decides
            await self._client.refresh_all_workers()
        return await self._model_list.fresh()

    async def _list_models(self) -> list[str]:
        models = await self._client.list_models()
        self._note_missing(models)
        metrics.note_served(models)
        return models

    def _note_missing(self, models: list[str]) -> None:
        """Take the controller's new list, noting when each model left it."""
        for name in set(self._models).difference(models):
            self._missing_since.setdefault(name, self._clock())
        for name in models:
            self._missing_since.pop(name, None)
        self._models = models

    async def controller_models(self) -> list[str]:
        """The controller's model list as it answered at most ``READY_WINDOW`` seconds ago, past
        the model-list cache and the outage grace: what ``/ready`` reports, so that an
        orchestrator sees a controller outage at once. Concurrent callers share one call, and
        its failure (raised) is reused for the window too: probes cost the controller at most
        one call per window."""
        answer = await self._probe.get()
        if isinstance(answer, errors.APIError):
            raise answer.with_traceback(None)
        return answer

    async def _probe_controller(self) -> list[str] | errors.APIError:
        try:
            return await self._list_models()
        except errors.APIError as exc:
            return exc

    async def multimodal_models(self) -> frozenset[str]:
        """Model names served by workers registered with ``multimodal: true``; cached like
        :meth:`models`. Only these are sent images."""
        return await self._multimodal.get()

    async def check_model(self, model: str, allows: Callable[[str], bool] | None = None) -> None:
        """404 with FastChat's text (code 40301) unless a worker serves ``model`` and
        ``allows`` it (the request's key, ``keys.Key.allows``): a model the key may not use
        gets the very answer of one that does not exist, naming only the models it may use.

        A name missing from the cached list is looked up once more, since a worker may have
        registered since. For ``outage_grace`` seconds after the controller stopped listing a
        model, a request for it is a 503 with Retry-After instead: its workers are likely coming
        back (a restarted controller knows a worker only from its next heartbeat), so clients
        should retry rather than give up.
        """
        models = await self.models()
        if model not in models:
            models = await self._model_list.fresh()
        if allows is not None:
            models = [name for name in models if allows(name)]
        if model in models:
            return
        missing = self._missing_since.get(model)
        hidden = allows is not None and not allows(model)
        if missing is not None and not hidden and self._clock() - missing < self._outage_grace:
            raise errors.upstream_unavailable(
                f"No worker serves {model} right now: the controller listed it until moments "
                "ago, and its workers may be registering again (e.g. after a controller restart)"
            )
        raise errors.model_not_found(f"Only {'&&'.join(models)} allowed now, your model {model}")

    # -- workers' facts ---------------------------------------------------------------------

    async def facts(self, worker: str, model: str) -> WorkerFacts:
        """The worker's conversation template and context length, one fetch shared by every
        request, reused for ``worker_facts_ttl`` and then refreshed in the background."""
        key = (worker, model)
        cached = self._facts.get(key)
        if cached is None:
            cached = self._facts[key] = Cached(
                lambda: self._fetch_facts(worker, model), ttl=self._facts_ttl,
                max_age=2 * self._facts_ttl, name=f"the template of {model} at {worker}",
                clock=self._clock,
            )
        return await cached.get()

    async def _fetch_facts(self, worker: str, model: str) -> WorkerFacts:
        conv, context_length = await asyncio.gather(
            self._client.conv_template(worker, model), self._client.context_length(worker, model)
        )
        return WorkerFacts(Template.from_worker(conv, worker), context_length)

    def forget(self, worker: str) -> None:
        """Drop a failed worker's facts: they are asked afresh when it is named again."""
        for key in [key for key in self._facts if key[0] == worker]:
            self._facts.pop(key).cancel()
