"""The whole on-disk layout of DVCR, in one place.

Every path the registry reads or writes is built by a function of this module, relative to
the storage driver's root (`DATA_DIR/dvcr/storage` in `dvp server`). Nothing else in the
package spells a path. The tree:

    <root>/
      blobs/
        <alg>/<hex[0:2]>/<hex>/data          content-addressed bytes: layers, configs and the
                                             manifests themselves (alg is sha256 or sha512).
                                             Written only by an atomic rename of a verified
                                             upload, so a blob here is always complete.
      uploads/
        <uuid>/info.json                     {"repository": ..., "startedAt": ...}
        <uuid>/data                          bytes received so far (PATCH appends here)
      repositories/
        <name...>/                           e.g. cvi/ubuntu, vi/prod/ubuntu (nested folders;
                                             OCI name components never start with "_",
                                             so the "_" folders below cannot collide)
          _layers/<alg>/<hex>/link           blob pushed to / mounted into this repository
          _manifests/revisions/<alg>/<hex>/link
                                             manifest of this repository: JSON
                                             {"digest", "mediaType", "size", "artifactType"}
          _manifests/tags/<tag>/link         the manifest digest the tag points at
          _referrers/<alg>/<subject-hex>/<alg>-<hex>.json
                                             a manifest whose `subject` is <subject>: the
                                             descriptor the referrers API returns
      upload-tickets/<id>.json               upload URLs handed out (token stored as SHA-256)

Small files (links, JSON) are replaced atomically (write to a temporary name, rename).
Uploads land in `uploads/` and become visible under `blobs/` only after their digest and
size are verified; garbage collection is the only thing that removes from `blobs/`.
"""

from __future__ import annotations

from controlplane.dvcr.digest import Digest

BLOBS = "blobs"
UPLOADS = "uploads"
REPOSITORIES = "repositories"
TICKETS = "upload-tickets"


def blob_data(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.hex[:2]}/{d.hex}/data"


def blob_dir(d: Digest) -> str:
    return f"{BLOBS}/{d.algorithm}/{d.hex[:2]}/{d.hex}"


def upload_dir(uuid: str) -> str:
    return f"{UPLOADS}/{uuid}"


def upload_data(uuid: str) -> str:
    return f"{UPLOADS}/{uuid}/data"


def upload_info(uuid: str) -> str:
    return f"{UPLOADS}/{uuid}/info.json"


def repo_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{d.algorithm}/{d.hex}/link"


def layer_links(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers"


def revision_link(name: str, d: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{d.algorithm}/{d.hex}/link"


def revisions(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions"


def tag_link(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/link"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, d: Digest) -> str:
    return f"{referrers(name, subject)}/{d.algorithm}-{d.hex}.json"


def referrers_root(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_referrers"


def ticket(ticket_id: str) -> str:
    return f"{TICKETS}/{ticket_id}.json"


def is_repository_marker(child: str) -> bool:
    """A folder under `repositories/` holding `_manifests` or `_layers` is a repository."""
    return child in ("_manifests", "_layers")
