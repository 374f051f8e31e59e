"""Associations of a batch's upserted subscriptions with the records their events name.

Runs on the worker thread, after the batch's upserts have their outcomes: the targets are
resolved to HubSpot ids (TargetCache first, then one batch read per object type and unique
property, up to 100 values a request), and the links made with the v4 batch endpoints, up to
100 a request, through the same Requester as the upserts (one app budget, the same holds).
Associating twice changes nothing (HubSpot's association endpoints are idempotent), so a
replay is safe. A target that does not exist is failed, skipped, or read again with backoff
until ASSOCIATION_RETRY_S has passed (ASSOCIATION_MISSING_TARGET). A request HubSpot keeps
failing transiently is given up after ASSOCIATION_RETRY_S too: its links fail. Nothing here
undoes an upsert; what failed is reported (and dead-lettered as ASSOCIATION_FAILED) by the
publisher. Replacing an association (the subscription moved to another contact) is not done:
links are only ever added.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from service.core.associations import (
    ASSOCIATION_FAILED,
    ApiPaths,
    Link,
    TargetCache,
    TargetKey,
    associate_body,
    chunks,
    found_targets,
    read_body,
    refused_links,
    target_key,
)
from service.core.clock import Clock
from service.core.model import (
    AssociationOutcome,
    AssociationRef,
    AssociationStatus,
    BatchOutcome,
    ErrorInfo,
    Status,
)
from service.core.ports import Metrics
from service.core.responses import Classified, ReplyKind
from service.core.retry import Backoff
from service.loop.requester import Requester

log = logging.getLogger(__name__)


class MissingTargetPolicy(StrEnum):
    """ASSOCIATION_MISSING_TARGET: what an association whose target does not exist comes to."""

    FAIL = "fail"
    SKIP = "skip"
    RETRY = "retry"  # read again with backoff (another integration may create it), then fail


@dataclass(frozen=True, slots=True)
class AssociationPolicy:
    paths: ApiPaths
    missing_target: MissingTargetPolicy = MissingTargetPolicy.FAIL
    retry_s: float = 300.0  # how long missing targets and failing requests are retried
    backoff: Backoff = field(default_factory=Backoff)
    cache_max: int = 100_000  # targets resolved to HubSpot ids, kept for cache_ttl_s
    cache_ttl_s: float = 3_600.0


Wanted = dict[str, tuple[str, list[AssociationRef]]]  # batch input trace id -> (from id, refs)
Resolved = dict[TargetKey, "str | ErrorInfo | None"]  # HubSpot id, why not, or missing


class Associator:
    """Makes the associations a batch's upserted inputs named; safe from several threads."""

    def __init__(
        self, requester: Requester, *, clock: Clock, metrics: Metrics, policy: AssociationPolicy
    ) -> None:
        self._requester, self._clock, self._metrics = requester, clock, metrics
        self._paths, self._policy = policy.paths, policy
        self._cache = TargetCache(policy.cache_max, policy.cache_ttl_s)

    def associate(self, outcome: BatchOutcome) -> None:
        """Fill `outcome.associations` for every upserted input that named associations."""
        wanted = _wanted(outcome)
        if not wanted:
            return
        deadline = self._clock.monotonic() + self._policy.retry_s
        refs = {ref for _, named in wanted.values() for ref in named}
        resolved = self._resolve(refs, deadline)
        links: dict[Link, str] = {}  # the link, and the batch input that wanted it
        for trace_id, (from_id, named) in wanted.items():
            results = outcome.associations.setdefault(trace_id, {})
            for ref in named:
                target = resolved.get(target_key(ref))
                if isinstance(target, str):
                    links[Link(from_id, target, ref)] = trace_id
                else:
                    results[ref] = self._unresolved(ref, target)
        for link, result in self._link(list(links), deadline).items():
            outcome.associations[links[link]][link.ref] = result
        for results in outcome.associations.values():
            for result in results.values():
                self._metrics.associations.labels(result.status.value).inc()

    # -- targets -----------------------------------------------------------------------------

    def _resolve(self, refs: set[AssociationRef], deadline: float) -> Resolved:
        """Each target's HubSpot id: cached, read here, or read by another worker meanwhile."""
        resolved: Resolved = {}
        now = self._clock.monotonic()
        unknown = []
        for key in {target_key(ref) for ref in refs}:
            cached = self._cache.get(key, now)
            self._metrics.association_cache.labels("hit" if cached else "miss").inc()
            if cached is None:
                unknown.append(key)
            else:
                resolved[key] = cached
        mine, theirs = self._cache.claim(unknown)
        try:
            resolved.update(self._read_keys(mine, deadline))
        finally:
            answers = {k: v for k, v in resolved.items() if not isinstance(v, ErrorInfo)}
            self._cache.settle(mine, answers, self._clock.monotonic())
        resolved.update(self._await(theirs, deadline))
        return resolved

    def _await(self, keys: list[TargetKey], deadline: float) -> Resolved:
        """Targets another worker was reading: its answer, or (none came) a read of our own."""
        answered: Resolved = {}
        unanswered = []
        for key in keys:
            wait_s = max(deadline - self._clock.monotonic(), 0.0)
            answer = self._cache.awaited(key, wait_s, self._clock.monotonic())
            if answer is False:
                unanswered.append(key)
            else:
                answered[key] = answer if isinstance(answer, str) else None
        answered.update(self._read_keys(unanswered, deadline))
        return answered

    def _read_keys(self, keys: list[TargetKey], deadline: float) -> Resolved:
        by_property: dict[tuple[str, str], list[str]] = {}
        for to_type, id_property, value in keys:
            by_property.setdefault((to_type, id_property), []).append(value)
        resolved: Resolved = {}
        for (to_type, id_property), values in by_property.items():
            resolved.update(self._read(to_type, id_property, sorted(values), deadline))
        return resolved

    def _read(self, to_type: str, id_property: str, values: list[str], deadline: float) -> Resolved:
        """Read targets; with the retry policy, those missing are read again until found or
        `deadline`. A target still missing maps to None; one the read failed for, to why."""
        resolved: Resolved = {}
        attempt = 0
        while values:
            missing = []
            for chunk in chunks(values):
                found = self._read_chunk(to_type, id_property, chunk, deadline)
                for value in chunk:
                    key = (to_type, id_property, value)
                    resolved[key] = found if isinstance(found, ErrorInfo) else found.get(value)
                    if resolved[key] is None:
                        missing.append(value)
            if not self._retry_missing(missing, attempt, deadline):
                break
            values, attempt = missing, attempt + 1
        return resolved

    def _read_chunk(
        self, to_type: str, id_property: str, values: list[str], deadline: float
    ) -> dict[str, str] | ErrorInfo:
        path = self._paths.read(to_type)
        reply = self._request(read_body(id_property, values), path, "read", deadline)
        if isinstance(reply, ErrorInfo):
            return reply
        return found_targets(reply.document, id_property)

    def _retry_missing(self, missing: list[str], attempt: int, deadline: float) -> bool:
        if not missing or self._policy.missing_target is not MissingTargetPolicy.RETRY:
            return False
        delay = self._policy.backoff.delay(attempt)
        if self._clock.monotonic() + delay >= deadline:
            return False
        self._metrics.retries.labels("association_target_missing").inc()
        self._requester.wait(delay)
        return True

    # -- links -------------------------------------------------------------------------------

    def _link(self, links: list[Link], deadline: float) -> dict[Link, AssociationOutcome]:
        """Make the links: per target type, default and labelled apart, 100 a request."""
        results: dict[Link, AssociationOutcome] = {}
        for labelled in (False, True):
            chosen = [link for link in links if (link.ref.type_id is not None) is labelled]
            for to_type in sorted({link.ref.to_type for link in chosen}):
                same = [link for link in chosen if link.ref.to_type == to_type]
                for chunk in chunks(same):
                    results.update(self._associate(to_type, chunk, labelled, deadline))
        return results

    def _unresolved(self, ref: AssociationRef, why: ErrorInfo | None) -> AssociationOutcome:
        if why is not None:
            return _failed(why)
        if self._policy.missing_target is MissingTargetPolicy.SKIP:
            return AssociationOutcome(AssociationStatus.SKIPPED)
        message = f"no {ref.to_type} record has {ref.id_property} = {ref.value!r}"
        return _failed(ErrorInfo(ASSOCIATION_FAILED, message))

    def _associate(
        self, to_type: str, links: list[Link], labelled: bool, deadline: float
    ) -> dict[Link, AssociationOutcome]:
        path = self._paths.associate(to_type, labelled=labelled)
        reply = self._request(associate_body(links, labelled=labelled), path, "associate", deadline)
        if isinstance(reply, ErrorInfo):
            return {link: _failed(reply) for link in links}
        refused = refused_links(reply.document, links, reply.status)
        return {
            link: _failed(refused[link], link.to_id)
            if link in refused
            else AssociationOutcome(AssociationStatus.ASSOCIATED, link.to_id)
            for link in links
        }

    # -- one request, until it has an answer -------------------------------------------------

    def _request(
        self, body: bytes, path: str, operation: str, deadline: float
    ) -> Classified | ErrorInfo:
        """The reply HubSpot accepted, or why the request's targets or links fail: a
        rejection, or transient failures past `deadline`. Rate limits, the daily limit and
        refused credentials hold as they do for upserts, and never fail anything."""
        failures = 0
        while True:
            sent = self._requester.send(body, path=path)
            reply = sent.reply
            assert reply is not None  # nothing can take the request back: it always goes
            self._metrics.association_requests.labels(operation, reply.kind.value).inc()
            if reply.kind is ReplyKind.SUCCESS:
                return reply
            if reply.kind is ReplyKind.REJECTED:
                return ErrorInfo(ASSOCIATION_FAILED, reply.message, reply.status)
            if not self._held(reply, sent.sent_at, failures, deadline):
                return ErrorInfo(
                    ASSOCIATION_FAILED,
                    f"HubSpot kept failing the {operation} request: {reply.message}",
                    reply.status or None,
                )
            failures += reply.kind is ReplyKind.TRANSIENT

    def _held(self, reply: Classified, sent_at: float, failures: int, deadline: float) -> bool:
        """Wait as the reply asks; False for a transient failure past the deadline."""
        context: dict[str, object] = {}
        if reply.kind is ReplyKind.RATE_LIMITED:
            self._requester.back_off(reply.retry_after_s, reply.policy)
        elif reply.kind is ReplyKind.DAILY_LIMITED:
            self._requester.hold_daily("HubSpot answered 429 DAILY", sent_at, context)
        elif reply.kind is ReplyKind.AUTH:
            self._requester.hold_auth(reply, sent_at, context)
        else:  # transient
            delay = self._policy.backoff.delay(failures, floor_s=reply.retry_after_s or 0.0)
            if self._clock.monotonic() + delay >= deadline:
                return False
            self._metrics.retries.labels("association_transient").inc()
            self._requester.wait(delay)
        return True


def _failed(why: ErrorInfo, to_id: str | None = None) -> AssociationOutcome:
    return AssociationOutcome(AssociationStatus.FAILED, to_id, why)


def _wanted(outcome: BatchOutcome) -> Wanted:
    """The associations to make: for each upserted batch input (or the upserted events of
    one split back into its events), its HubSpot id and what its events named."""
    wanted: Wanted = {}
    for item in outcome.batch.inputs:
        result = outcome.by_trace_id.get(item.trace_id)
        if result is not None and result.status is Status.UPSERTED and result.record:
            named = item.associations()
            if named:
                wanted[item.trace_id] = (result.record.hubspot_id, named)
            continue
        pairs = outcome.per_event.get(item.trace_id, [])
        upserted = [(e, r) for e, r in pairs if r is not None and r.status is Status.UPSERTED]
        named = list(dict.fromkeys(ref for event, _ in upserted for ref in event.associations))
        if named and upserted[0][1] is not None and upserted[0][1].record is not None:
            wanted[item.trace_id] = (upserted[0][1].record.hubspot_id, named)
    return wanted
