"""The chaos soak's report notes: what was run, and what each figure means (`bench/chaos.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.chaosplan import Scale
from bench.chaosrun import BOT_POLL_SECONDS, FAULT_RATE
from bot.worker import WorkerConfig


def notes(scale: Scale, seeds: Sequence[int], quick: bool) -> list[str]:
    lease = (
        f"the service's default AUTOJOIN_LEASE_SECONDS ({WorkerConfig().lease_seconds:g} s)"
        if scale.lease_seconds is None
        else f"AUTOJOIN_LEASE_SECONDS={scale.lease_seconds:g} (shortened so CI settles fast: "
        "its latencies say nothing about the issue's bound)"
    )
    kill = f"{scale.kill_every[0]:g}–{scale.kill_every[1]:g} s"
    pushed_hires = scale.hires - scale.polled_hires
    return [
        f"Seeds: {', '.join(map(str, seeds))}. Each seed: two `autojoin serve` replicas (front "
        f"+ worker) on one fresh PostgreSQL schema, with {lease}; AUTOJOIN_RECONCILE_MINUTES=0 "
        "so only the events reach the portal. Both intakes are on: pushed events (B24_APP_TOKEN, "
        "the classic bot's CLIENT_ID) and the pull intakes (B24_BOT_TOKEN: the Chatbots 2.0 bot "
        f"fetched every {BOT_POLL_SECONDS:g} s; the hire poll every {scale.hire_poll:g} s (its "
        "default is 300 s), "
        "with B24_MEMBER_ID set so pushed and polled events share once-only keys). Both bots "
        "are registered first with `autojoin register-bot` (classic, then v2 in fetch mode), "
        "and the load starts once the hire poll has taken its starting point.",
        "Portal: the fake Bitrix24 in the benchmark process over HTTP, at the real limit (2 "
        f"requests/s, burst 50, not time-scaled), failing a seeded {FAULT_RATE:.0%} of HTTP "
        "requests with a 500 (a batch fails whole). Figures count from after the registration; "
        "the pollers' own calls spend the same budget.",
        f"Load, pushed: {pushed_hires:,} ONUSERADD hires ({scale.twice} delivered twice, to "
        f"both replicas, 0.1–3 s apart) and {scale.asks - scale.pulled_asks} classic bot "
        "requests (`join lounge` messages and `/join lounge` commands). Each delivery goes to a "
        "replica that is up; a refused connection, reset or non-2xx is tried again on the other "
        "one 0.25 s later. A pushed event is acknowledged at its first 2xx.",
        f"Load, pulled: {scale.polled_hires:,} hires only created at the portal (no ONUSERADD "
        "anywhere; the replicas' `user.get` hire poll must find them) and "
        f"{scale.pulled_asks} requests to the Chatbots 2.0 bot (messages and `/join` commands "
        "in its fetch queue, answered with `imbot.v2.Chat.Message.send` / `Command.answer`). "
        "Nothing answers a pulled event with a 2xx: it counts as acknowledged when autojoin "
        "committed it (its first job's `created_at`, read back from the database), the moment "
        "the poller may move its offset or cursor past it, as a pushed event's 2xx follows its "
        "commit. `pulled: published → member` counts from its appearance at the portal "
        "instead, so it adds the wait for the next poll (and, after a kill of the poll's "
        "holder, for the lease to pass). "
        "All events, both intakes, at uniform random times over "
        f"{scale.load_seconds:g} s; the target rows are over all of them, the `pushed:` and "
        "`pulled:` rows split lost and latency by intake.",
        f"Chaos: kill -9 of a random replica every {kill} (seeded), started again "
        f"{scale.restart_after[0]:g}–{scale.restart_after[1]:g} s later; one more kill "
        f"{scale.final_kill[0]:g}–{scale.final_kill[1]:g} s after the last event. Then it "
        f"waits up to {scale.settle_limit:g} s after the last event until every membership "
        "exists and no job is pending or running.",
        "Lost: an acknowledged event with a membership that never appeared, or a bot request "
        "that was never answered. Ack → member: the portal's time of creating the membership "
        "(`Chat.joins`) minus the event's acknowledgement (0 if the membership came first: an "
        "ack lost in a kill, answered `duplicate` later). "
        "Effective adds twice: a (chat, user) the portal made a member more than once; the "
        "audit row count is the cross-check. Members not audited `added`: the portal made "
        "them members, but the audit says already_member (a worker killed after its add "
        "reached the portal; the retry found them in). Repeated add calls for someone "
        "already in are a no-op at the portal and shown for information.",
        "Duplicate bot replies: per request, every message the portal stored for it (classic "
        "command answers by MESSAGE_ID; classic messages and every v2 reply by the author's "
        "private dialog, each author asking once); the same text sent again is a duplicate. "
        "The 'queued' notice is a different text and counted on its own.",
    ] + (["Quick mode: a small load, kills every few seconds, one seed."] if quick else [])
