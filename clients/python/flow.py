"""Drives a full flow through the Python client generated from openapi.yaml by
openapi-python-client (package `social_api_client`, generated with no hand edits)."""

import sys
import uuid


from social_api_client import AuthenticatedClient, Client
from social_api_client.api.accounts import get_me, login, refresh, register
from social_api_client.api.follows import follow_user, list_followers
from social_api_client.api.posts import create_post, get_post, get_timeline
from social_api_client.models import (
    CreatePostRequest,
    FollowItem,
    LoginRequest,
    Post,
    PostPage,
    RefreshRequest,
    RegisterRequest,
)

base_url = sys.argv[1]
suffix = uuid.uuid4().hex[:8]
anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)


def sign_up(name):
    response = register.sync_detailed(
        client=anonymous,
        body=RegisterRequest(
            username=f"{name}_{suffix}", email=f"{name}_{suffix}@example.com", password="py-client-password"
        ),
    )
    assert response.status_code == 201, response
    token = response.parsed.access_token
    return response.parsed.user.username, AuthenticatedClient(base_url=base_url, token=token)


alice, alice_client = sign_up("alice")
bob, bob_client = sign_up("bob")

followed = follow_user.sync_detailed(client=alice_client, username=bob)
assert followed.status_code == 201, followed
assert followed.parsed.following is True

followers = list_followers.sync(client=anonymous, username=bob)
assert [item.user.username for item in followers.items] == [alice], followers
# Pages hold the document's own item types, not classes generated per page.
assert all(isinstance(item, FollowItem) for item in followers.items), followers

for text in ["first", "second", "third"]:
    created = create_post.sync_detailed(client=bob_client, body=CreatePostRequest(body=f"{text} post"))
    assert created.status_code == 201, created

first_page = get_timeline.sync(client=alice_client, limit=2)
assert isinstance(first_page, PostPage), first_page
assert all(isinstance(post, Post) for post in first_page.items), first_page
assert [post.body for post in first_page.items] == ["third post", "second post"], first_page
assert isinstance(first_page.next_cursor, str)
second_page = get_timeline.sync(client=alice_client, limit=2, cursor=first_page.next_cursor)
assert [post.body for post in second_page.items] == ["first post"], second_page
assert second_page.next_cursor is None

# Log in, refresh explicitly (as a client does before `expires_in` runs out), and carry on with
# the new token. Works against a server with any token lifetime, the default one included.
logged_in = login.sync_detailed(
    client=anonymous, body=LoginRequest(username=alice, password="py-client-password")
)
assert logged_in.status_code == 200, logged_in
assert isinstance(logged_in.parsed.expires_in, int), logged_in.parsed
assert logged_in.parsed.expires_in > 0, logged_in.parsed
session = AuthenticatedClient(base_url=base_url, token=logged_in.parsed.access_token)
assert get_me.sync_detailed(client=session).status_code == 200
forged = AuthenticatedClient(base_url=base_url, token=logged_in.parsed.access_token + "x")
assert get_me.sync_detailed(client=forged).status_code == 401
refreshed = refresh.sync_detailed(
    client=anonymous, body=RefreshRequest(refresh_token=logged_in.parsed.refresh_token)
)
assert refreshed.status_code == 200, refreshed
assert refreshed.parsed.refresh_token != logged_in.parsed.refresh_token
assert refreshed.parsed.expires_in > 0, refreshed.parsed
session = AuthenticatedClient(base_url=base_url, token=refreshed.parsed.access_token)
me = get_me.sync_detailed(client=session)
assert me.status_code == 200 and me.parsed.username == alice, me
again = get_timeline.sync(client=session, limit=2)
assert [post.body for post in again.items] == ["third post", "second post"], again

missing = get_post.sync_detailed(client=anonymous, id=999_999_999)
assert missing.status_code == 404, missing
assert missing.parsed.code == "post_not_found", missing.parsed
assert missing.parsed.status == 404

print("python client flow: ok")
