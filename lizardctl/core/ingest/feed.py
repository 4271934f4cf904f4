"""Walk, then claim: list the folders, claim their parts, hand the ones we hold to batching.

Without a job (dry run) every part is ours. With one, parts go to whoever claims them
first (``jobs.py``); at the end, ``sweep`` takes over parts whose worker died and waits
for the ones still in progress, so a finished run leaves nothing of its job open.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

from lizardctl.core.db.models import utcnow
from lizardctl.core.ingest.dispatch import Batcher
from lizardctl.core.ingest.jobs import JobMembership, Unit, folder_key
from lizardctl.core.ingest.signals import StopOnSignal
from lizardctl.core.ingest.walk import Listing, Walker

SWEEP_POLL_S = (0.05, 2.0)
"""A run that has finished its own parts looks at the others' after 0.05 s, then twice
as long each time up to 2 s: others' last batches take a fraction of a second, and a
long wait (a slow host) should not cost the database a query every 50 ms."""

CLAIM_ROUNDS = 2
"""Folders are planned and claimed once listings for this many rounds of in-flight
batches have been gathered: a transaction per few folders cost the main process more
than all its other work, and a chunk this size is still small enough to share."""

Cuts = dict[str, tuple[Listing, list[list[str]]]]
"""Each folder's listing and its parts' stems, by folder key."""


class Feed:
    """The walk of one run: list folders, claim their parts, batch what is ours."""

    def __init__(
        self,
        walker: Walker,
        batcher: Batcher,
        job: JobMembership | None,
        stop: StopOnSignal,
        limit: int,
    ) -> None:
        self.walker = walker
        self.batcher = batcher
        self.job = job
        self.stop = stop
        self.limit = limit
        self.chunk = CLAIM_ROUNDS * limit * batcher.batch_size
        """Stems listed before they are planned and claimed together."""
        self.elsewhere = 0
        """Stems of listed folders whose parts other workers of the job took."""

    async def run(self) -> None:
        size = self.batcher.batch_size
        gathered: list[Listing] = []
        async for listings in self.walker:
            if self.stop.signal is not None:
                return
            if self.job is None:
                for listing in listings:
                    cut = listing.split(listing.parts_for(size))
                    await self.batcher.add(listing, [(None, stems) for stems in cut])
                continue
            gathered.extend(listings)
            if sum(len(listing.stems) for listing in gathered) >= self.chunk:
                await self._take(self.job, gathered)
                gathered = []
        if gathered and self.job is not None and self.stop.signal is None:
            await self._take(self.job, gathered)
        await self.batcher.drain()

    async def _take(self, job: JobMembership, listings: Sequence[Listing]) -> None:
        agreed = await job.plan(listings)
        by_key = {folder_key(listing.directory): listing for listing in listings}
        cuts = {key: (by_key[key], by_key[key].split(parts)) for key, parts in agreed.items()}
        stems = sum(len(listing.stems) for listing in listings)
        # About a chunk of stems per claim, however small the folders' parts are.
        limit = max(self.limit, -(-self.chunk * sum(agreed.values()) // max(stems, 1)))
        taken: set[Unit] = set()
        while self.stop.signal is None:
            units = await job.claim(list(agreed), limit)
            taken.update(units)
            await self._add(units, cuts)
            if len(units) < limit:
                break
        self.elsewhere += sum(
            len(stems)
            for key, (_, cut) in cuts.items()
            for part, stems in enumerate(cut)
            if (key, part) not in taken
        )

    async def _add(self, units: Sequence[Unit], cuts: Cuts) -> None:
        """Hand claimed parts to the batcher."""
        for key, group in groupby(units, key=itemgetter(0)):
            listing, cut = cuts[key]
            await self.batcher.add(listing, [((key, part), cut[part]) for _, part in group])

    async def sweep(self) -> None:
        """Finish the job: take over parts whose worker died, wait for the live ones.

        Waiting is bounded by the claim lease: a part is either done by its worker or
        lapsed, and then taken over here.
        """
        assert self.job is not None
        cuts: Cuts = {}
        first, longest = SWEEP_POLL_S
        poll = first
        while self.stop.signal is None:
            parts = await self.job.open_parts()
            if not parts:
                return
            now = utcnow()
            lapsed = sorted({p.folder for p in parts if p.lease_until < now})
            units = await self.job.claim(lapsed, self.limit) if lapsed else []
            if not units:
                wait = min(p.lease_until for p in parts) - now
                await asyncio.sleep(min(max(wait.total_seconds(), 0.02), poll))
                poll = min(poll * 2, longest)
                await self.job.beat()
                continue
            poll = first
            planned = {p.folder: (p.path, p.parts) for p in parts}
            for key in {key for key, _ in units} - cuts.keys():
                path, count = planned[key]
                listing = await self.walker.rescan(os.fsdecode(path))
                cuts[key] = (listing, listing.split(count))
            await self._add(units, cuts)
            await self.batcher.drain()
