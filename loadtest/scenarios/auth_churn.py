"""The auth-churn client: log in, refresh, read the profile, log out, on a fixed pace.

Login and refresh share the login limit per client address (default 10/minute), so this
client is a fixed count (``--auth-users``, default 1) on a pace (``--auth-pacing`` seconds
per cycle, default 15: 8 limited calls a minute) that the default limits allow. A 429 is
reported as a failure: it means the pace or the count is too high for the server's limits.
"""

from __future__ import annotations

from locust import constant_pacing, tag, task

from loadtest.scenarios.common import SeededApiUser, credentials


class AuthChurn(SeededApiUser):
    fixed_count = 1
    weight = 1

    def wait_time(self) -> float:
        return constant_pacing(self.environment.parsed_options.auth_pacing)(self)

    @tag("auth")
    @task
    def session_cycle(self) -> None:
        login = self.client.post(
            "/auth/login",
            json={"email": self.seeded.email, "password": credentials().password},
            name="auth: login",
        )
        if login.status_code != 200:
            return
        tokens = login.json()
        refreshed = self.client.post(
            "/auth/refresh", json={"refreshToken": tokens["refreshToken"]}, name="auth: refresh"
        )
        if refreshed.status_code != 200:
            return
        pair = refreshed.json()
        bearer = {"Authorization": f"Bearer {pair['accessToken']}"}
        self.client.get("/users/me", headers=bearer, name="auth: GET /users/me")
        self.client.post(
            "/auth/logout",
            json={"refreshToken": pair["refreshToken"]},
            headers=bearer,
            name="auth: logout",
        )
