"""Locust users for bench/load.py (run by it in a separate process; see that file).

The target's ids, keys and session cookie come from the JSON file named by
`BLANKET_LOAD_CONFIG`. Each user class is one endpoint, with a fixed number of users and a
constant pace of one request per second per user, so "50 concurrent clients" means 50 clients
each asking once a second, as a crawler fleet or a dashboard would.
"""

from __future__ import annotations

import json
import os
import random

from locust import HttpUser, constant_throughput, task

CONFIG = json.loads(open(os.environ["BLANKET_LOAD_CONFIG"]).read())  # noqa: SIM115
USERS = CONFIG["users"]


class RegistryCheck(HttpUser):
    """A crawler asking about 100 identifiers at a time (half known, some reserved)."""

    fixed_count = USERS["registry"]
    wait_time = constant_throughput(1)

    @task
    def check(self) -> None:
        known = random.sample(CONFIG["isbns"], 60)
        unknown = [f"97800000{random.randrange(100_000):05d}" for _ in range(40)]
        items = [{"scheme": "isbn", "identifier": v} for v in known + unknown]
        with self.client.post(
            "/api/v1/registry/check",
            json={"items": items},
            name="registry check (100 identifiers)",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or len(response.json()["results"]) != 100:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class StatementPage(HttpUser):
    """A rights holder reading its statement (HTML, with charts and lines)."""

    fixed_count = USERS["statement"]
    wait_time = constant_throughput(1)

    def on_start(self) -> None:
        self.client.cookies.set("sessionid", CONFIG["holder_session"])

    @task
    def statement(self) -> None:
        with self.client.get(
            f"/statements/{CONFIG['statement_id']}/", name="statement page", catch_response=True
        ) as response:
            if response.status_code != 200 or CONFIG["holder_code"] not in response.text:
                response.failure(f"{response.status_code}")


class DeclarationStatus(HttpUser):
    """A licensee's pipeline polling its declaration's status over the API."""

    fixed_count = USERS["declaration"]
    wait_time = constant_throughput(1)

    @task
    def status(self) -> None:
        with self.client.get(
            CONFIG["declaration_path"],
            headers={"Authorization": CONFIG["licensee_key"]},
            name="declaration status (API)",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or response.json().get("status") != "accepted":
                response.failure(f"{response.status_code}: {response.text[:200]}")
