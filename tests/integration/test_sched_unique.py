"""Unique-while-active jobs against real PostgreSQL: many concurrent POSTs with one key make one
job, duplicates get it back with 200; once it is finished the key is free; a retry that would
take a held key is refused with 409."""

from __future__ import annotations

import asyncio

from tests.integration.api_support import JOBS, api_client, api_settings
from worker.db.connection import connect


async def test_concurrent_posts_with_one_unique_key_make_one_job(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn, api_pool_max=8)) as client:
        body = {"job_type": "noop", "unique_key": "sync-account-7"}
        answers = await asyncio.gather(*(client.post(JOBS, json=body) for _ in range(60)))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(201) == 1 and codes.count(200) == 59, codes
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 1
        assert all(a.json()["unique_key"] == "sync-account-7" for a in answers)

        # a batch: its own duplicate and the active job both come back as not created
        batch = await client.post(
            f"{JOBS}/batch",
            json={"jobs": [body, {"job_type": "noop"}, body, {**body, "unique_key": "other"}]},
        )
        assert batch.status_code == 201, batch.text
        items = batch.json()["jobs"]
        assert [i["created"] for i in items] == [False, True, False, True]
        assert items[0]["id"] == items[2]["id"] == ids.pop()


async def test_the_key_is_free_again_once_the_job_is_finished(pg_dsn: str) -> None:
    async with api_client(api_settings(pg_dsn)) as client:
        body = {"job_type": "noop", "unique_key": "k"}
        first = (await client.post(JOBS, json=body)).json()
        conn = await connect(pg_dsn)
        try:
            await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = $1", first["id"])
        finally:
            await conn.close()
        second = await client.post(JOBS, json=body)
        assert second.status_code == 201 and second.json()["id"] != first["id"]
        # retrying the failed one while the new one holds the key: 409, nothing changes
        retried = await client.post(f"{JOBS}/{first['id']}/retry")
        assert retried.status_code == 409, retried.text
        assert "unique_key" in retried.text
        assert (await client.get(f"{JOBS}/{first['id']}")).json()["status"] == "failed"
        bad = await client.post(JOBS, json={"job_type": "noop", "unique_key": ""})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "unique_key"]


async def test_batches_with_the_same_keys_in_opposite_orders_never_deadlock(pg_dsn: str) -> None:
    """Each batch takes its keys' index entries in key order, whatever the order of its items,
    so two batches can wait on each other but never in a cycle: no deadlock, no 5xx."""
    async with api_client(api_settings(pg_dsn, api_pool_max=8)) as client:
        for round_ in range(10):
            keys = [f"r{round_}-k{i:03}" for i in range(40)]
            forward = {"jobs": [{"job_type": "noop", "unique_key": k} for k in keys]}
            backward = {"jobs": list(reversed(forward["jobs"]))}
            answers = await asyncio.gather(
                *(client.post(f"{JOBS}/batch", json=b) for b in (forward, backward) * 2)
            )
            codes = [a.status_code for a in answers]
            assert set(codes) <= {200, 201} and 201 in codes, [a.text for a in answers]
            ids: dict[str, set[int]] = {}
            created: dict[str, int] = {}
            for body, answer in zip((forward, backward) * 2, answers, strict=True):
                for sent, item in zip(body["jobs"], answer.json()["jobs"], strict=True):
                    ids.setdefault(sent["unique_key"], set()).add(item["id"])
                    created[sent["unique_key"]] = (
                        created.get(sent["unique_key"], 0) + item["created"]
                    )
            assert all(len(found) == 1 for found in ids.values()), ids
            assert set(created.values()) == {1}, created
