"""DVCR's per-repository pull check for platform users (`dvcr/access.py`): which identities it
asks about, the RBAC question each repository becomes, and the cache of answers."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.dvcr.access import PullAccess, checked, image_of
from controlplane.dvcr.auth import Identity

USER = Identity("dev", "pull", "token", ("devs", "system:authenticated"))


def test_repositories_map_to_the_images_they_hold() -> None:
    assert image_of("vi/team-a/ubuntu") == ("virtualimages", "team-a", "ubuntu")
    assert image_of("cvi/ubuntu") == ("clustervirtualimages", "", "ubuntu")
    assert image_of("vd/team-a/root") is None and image_of("vi/team-a") is None and image_of("cvi/a/b") is None


def test_only_pull_role_platform_users_are_checked() -> None:
    assert checked(USER)
    assert not checked(Identity("admin", "admin", "token", ("system:masters",)))
    assert not checked(Identity("system:node:n1", "pull", "token", ("system:nodes",)))
    assert not checked(Identity("node", "pull", "htpasswd"))


def test_the_answer_is_asked_once_and_says_why() -> None:
    asked: list[dict[str, Any]] = []

    async def review(spec: dict[str, Any]) -> bool:
        asked.append(spec)
        return spec["resourceAttributes"]["namespace"] == "team-a"

    access = PullAccess(review)

    async def run() -> list[str | None]:
        return [await access.why_not(USER, "vi/team-a/ubuntu"), await access.why_not(USER, "vi/team-a/ubuntu"),
                await access.why_not(USER, "vi/team-b/ubuntu"), await access.why_not(USER, None),
                await access.why_not(USER, "vd/team-a/root")]

    ok, again, other, catalog, disk = asyncio.run(run())
    assert ok is None and again is None
    assert other == 'user "dev" may not get virtualimages "ubuntu" in the namespace "team-b", so not pull vi/team-b/ubuntu'
    assert catalog is not None and "push role" in catalog and disk is not None
    assert len(asked) == 2  # cached: one review per user and repository
    assert asked[0] == {"user": "dev", "groups": ["devs", "system:authenticated"], "resourceAttributes": {
        "group": "virtualization.deckhouse.io", "resource": "virtualimages", "verb": "get", "namespace": "team-a",
        "name": "ubuntu"}}
