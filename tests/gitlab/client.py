"""python-gitlab, unchanged, against patrol's GitLab-compatible API.

Usage: python3 client.py URL ADMIN_TOKEN USER_ID
Run by tests/api/gitlab.rs; exits non-zero on the first thing that is not as GitLab's.
"""
import datetime
import sys

import gitlab

url, admin_token, user_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
expires = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()

admin = gitlab.Gitlab(url, private_token=admin_token)
admin.auth()
assert admin.user.is_admin, admin.user

# Create (admin), for another user.
user = admin.users.get(user_id, lazy=True)
created = user.personal_access_tokens.create(
    {"name": "from python-gitlab", "scopes": ["api"], "expires_at": expires}
)
assert created.token.startswith("glpat-"), created
assert created.user_id == user_id and created.scopes == ["api"], created.attributes
print("created", created.id)

# The user's own client, with that token.
mine = gitlab.Gitlab(url, private_token=created.token)
mine.auth()
assert mine.user.id == user_id, mine.user

# List: the user's tokens, with GitLab's pagination.
listed = mine.personal_access_tokens.list(get_all=True)
assert created.id in [t.id for t in listed], [t.id for t in listed]
assert all(t.user_id == user_id for t in listed)
print("listed", len(listed))

# Get, and get self.
got = mine.personal_access_tokens.get(created.id)
assert got.name == "from python-gitlab" and got.active and not got.revoked, got.attributes
me = mine.personal_access_tokens.get("self")
assert me.id == created.id, me.attributes
print("got", got.id, "self", me.id)

# Rotate by id (as the admin): the old value stops working, the new one works.
rotated = admin.personal_access_tokens.rotate(created.id, expires_at=expires)
assert rotated["token"] != created.token and rotated["name"] == "from python-gitlab", rotated
try:
    mine.personal_access_tokens.get("self")
    raise AssertionError("the rotated token still works")
except gitlab.exceptions.GitlabAuthenticationError:
    pass
print("rotated", created.id, "->", rotated["id"])

# Rotate self, with the new value.
current = gitlab.Gitlab(url, private_token=rotated["token"])
again = current.personal_access_tokens.rotate("self")
assert again["id"] != rotated["id"], again
print("rotated self", rotated["id"], "->", again["id"])

# Delete (revoke) by id, as the user's newest token itself.
last = gitlab.Gitlab(url, private_token=again["token"])
last.personal_access_tokens.delete(again["id"])
try:
    last.personal_access_tokens.get("self")
    raise AssertionError("the deleted token still works")
except gitlab.exceptions.GitlabAuthenticationError:
    pass
print("deleted", again["id"])
print("python-gitlab", gitlab.__version__, "ok")
