"""Drives a full flow through the Python client generated from openapi.yaml by
openapi-python-client (package `social_api_client`, generated with no hand edits)."""

import sys
import uuid

from social_api_client import AuthenticatedClient, Client
from social_api_client.api.accounts import register
from social_api_client.api.follows import follow_user, list_followers
from social_api_client.api.posts import create_post, get_post, get_timeline
from social_api_client.models import CreatePostRequest, FollowItem, Post, PostPage, RegisterRequest

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

missing = get_post.sync_detailed(client=anonymous, id=999_999_999)
assert missing.status_code == 404, missing
assert missing.parsed.code == "post_not_found", missing.parsed
assert missing.parsed.status == 404

print("python client flow: ok")
