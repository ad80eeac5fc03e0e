"""What the end-to-end checks (.ci/durability.py, .ci/replicas.py) share: one way to talk to the API
and one model of the follow graph, so a new kind of relation (blocks, mutes, follow requests) is
taught to one place. Standard library only; imported by its bare name, as .ci/ is the running
script's directory and so on sys.path."""

from __future__ import annotations

import http.client
import json
from typing import NamedTuple

# The durability check waits this long plus a margin for its load threads, so it relies on every
# request giving up by then.
REQUEST_TIMEOUT = 15.0


def request(port: int, method: str, path: str, token: str | None = None, body=None,
            timeout: float = REQUEST_TIMEOUT, strict_json: bool = False,
            headers: dict[str, str] | None = None):
    """One JSON request to 127.0.0.1:port on its own connection: (status, headers with lower-cased
    names, parsed body or None). Raises OSError or http.client.HTTPException when there is no
    complete answer. A body that is not JSON is None, so a load thread never dies on it; with
    strict_json it raises ValueError instead, so a check fails where the bad answer came."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    extra = headers or {}
    try:
        headers = {"accept": "application/json", **extra}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if token:
            headers["authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                if strict_json:
                    raise
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed
    finally:
        conn.close()


class Post(NamedTuple):
    author: str
    body: str


class Graph:
    """Users, who follows whom and the live posts, and what the API must answer from them. It is
    filled either by a client that knows every write it made (replicas) or from the rows a
    database holds (durability)."""

    def __init__(self) -> None:
        self.tokens: dict[str, str | None] = {}  # every user, with a bearer token when known
        self.display: dict[str, str | None] = {}  # display_name; None until one is set
        self.follows: set[tuple[str, str]] = set()  # (follower, followed)
        self.posts: dict[int, Post] = {}  # live posts by id

    def add_user(self, name: str, token: str | None = None) -> None:
        self.tokens[name] = token
        self.display[name] = None

    def follow(self, follower: str, followed: str) -> None:
        self.follows.add((follower, followed))

    def unfollow(self, follower: str, followed: str) -> None:
        self.follows.discard((follower, followed))

    def add_post(self, post_id: int, author: str, body: str) -> None:
        self.posts[post_id] = Post(author, body)

    def delete_post(self, post_id: int) -> Post:
        return self.posts.pop(post_id)

    def followers(self, name: str) -> set[str]:
        return {a for a, b in self.follows if b == name}

    def following(self, name: str) -> set[str]:
        return {b for a, b in self.follows if a == name}

    def counts(self, name: str) -> tuple[int, int, int]:
        """(followers_count, following_count, posts_count), as a profile answers them."""
        return (len(self.followers(name)), len(self.following(name)),
                sum(1 for p in self.posts.values() if p.author == name))

    def timeline(self, name: str, limit: int = 100) -> list[int]:
        """Post ids of the first timeline page: the user's own posts and those of the users they
        follow, newest first (ids grow with time, so newest is highest)."""
        following = self.following(name)
        ids = (pid for pid, p in self.posts.items() if p.author == name or p.author in following)
        return sorted(ids, reverse=True)[:limit]
