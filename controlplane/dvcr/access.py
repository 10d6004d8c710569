"""Which repositories a platform user may pull: DVCR asks the API server, as a kubelet would.

A platform bearer token with only the `pull` role (an ordinary user, or a ServiceAccount) may
read a repository only where RBAC lets it read the image it holds: `vi/<ns>/<name>` needs `get`
on VirtualImage `<name>` in `<ns>`, `cvi/<name>` `get` on that ClusterVirtualImage; other
repositories (disks' imports, anything else) and the repository list (`_catalog`) are not for
it. The answer comes from a SubjectAccessReview with the user's name and groups (DVCR's own
identity may create them), cached for a short time per user and repository, positive and
negative alike, so a pull of many blobs costs one review.

Not checked here: DVCR's own users (htpasswd: the importer, the node pull user, the admin),
tokens of the `push` or `admin` roles (`system:masters`, `dvp:dvcr-writers`), and node
identities (`system:nodes`): a node pulls whatever an instance placed on it needs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.dvcr.auth import Identity

NODES_GROUP = "system:nodes"
GROUP = "virtualization.deckhouse.io"
Review = Callable[[dict[str, Any]], Awaitable[bool]]
"""Runs a SubjectAccessReview spec; True when allowed."""


def image_of(repository: str) -> tuple[str, str, str] | None:
    """(resource, namespace, name) of the image a repository holds, or None for other repositories."""
    parts = repository.split("/")
    if len(parts) == 3 and parts[0] == "vi":
        return "virtualimages", parts[1], parts[2]
    if len(parts) == 2 and parts[0] == "cvi":
        return "clustervirtualimages", "", parts[1]
    return None


def checked(identity: Identity) -> bool:
    """Whether DVCR asks the API server about this identity's pulls."""
    return identity.via == "token" and identity.role == "pull" and NODES_GROUP not in identity.groups


class PullAccess:
    def __init__(self, review: Review, *, ttl: float = 10.0, max_entries: int = 10_000) -> None:
        self.review = review
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[float, bool]] = {}

    async def why_not(self, identity: Identity, repository: str | None) -> str | None:
        """None when `identity` may pull from `repository` (None: the repository list); else why not."""
        if not checked(identity):
            return None
        if repository is None:
            return "listing repositories needs DVCR's push role; pull an image by its repository name"
        image = image_of(repository)
        if image is None:
            return f"repository {repository} holds no VirtualImage or ClusterVirtualImage this user can be granted"
        key = (identity.name, identity.groups, repository)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is None or hit[0] <= now:
            resource, namespace, name = image
            allowed = await self.review({"user": identity.name, "groups": list(identity.groups), "resourceAttributes": {
                "group": GROUP, "resource": resource, "verb": "get", "namespace": namespace, "name": name}})
            if len(self._cache) >= self.max_entries:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            self._cache[key] = hit = (now + self.ttl, allowed)
        if hit[1]:
            return None
        resource, namespace, name = image
        where = f' in the namespace "{namespace}"' if namespace else ""
        return f'user "{identity.name}" may not get {resource} "{name}"{where}, so not pull {repository}'
