"""Schemathesis hooks for patrol (loaded by tests/schema/run.sh through SCHEMATHESIS_HOOKS).

The operations secured by the `token` scheme (GitLab's API under /api/v4 and
/v1/tokens/self) take an end user's token. Many of them revoke or rotate the token
they are called with, so one token would soon be dead and every later call a 401.
Each request gets a fresh one instead: a legacy `api` + `admin_mode` token of an admin
user, minted through the service-key API. The settings and the user are put back
first, since the fuzzer changes both (and may do so between those calls: hence the
retries, and an expiry of tomorrow, which any `max_lifetime_days` allows).
"""

import datetime
import os

import requests
import schemathesis

BASE_URL = os.environ["PATROL_SCHEMA_URL"]
SERVICE_KEY = os.environ["PATROL_SCHEMA_KEY"]
# Far above the ids the fuzzer tends to pick.
USER_ID = 7_000_000_001
SETTINGS = {
    "max_lifetime_days": 365,
    "require_expiry": True,
    "allow_legacy_token_creation": True,
}
USER = {"username": "schemathesis-user", "admin": True, "state": "active"}

_session = requests.Session()
_session.headers["X-Patrol-Key"] = SERVICE_KEY


def _ok(response: requests.Response) -> requests.Response:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text}"
        )
    return response


@schemathesis.auth(refresh_interval=None).apply_to(path_regex=r"^/(api/v4/|v1/tokens/self)")
class FreshToken:
    """A new end-user token for every request."""

    def get(self, case, context):
        tomorrow = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)
        body = {"name": "schemathesis", "scopes": ["api", "admin_mode"], "expires_at": tomorrow.isoformat()}
        for attempt in range(5):
            try:
                _ok(_session.put(f"{BASE_URL}/v1/settings", json=SETTINGS, timeout=10))
                _ok(_session.put(f"{BASE_URL}/v1/directory/users/{USER_ID}", json=USER, timeout=10))
                created = _ok(
                    _session.post(f"{BASE_URL}/v1/users/{USER_ID}/tokens", json=body, timeout=10)
                )
                return created.json()["token"]
            except RuntimeError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["PRIVATE-TOKEN"] = data


_SEEN = os.environ.get("PATROL_SEEN_STATUSES")


@schemathesis.hook
def after_call(context, case, response):
    """Notes `METHOD path status` for tests/schema/coverage.py."""
    if _SEEN:
        path = response.request.path_url
        with open(_SEEN, "a", encoding="utf-8") as seen:
            seen.write(f"{case.method.upper()} {path} {response.status_code}\n")
