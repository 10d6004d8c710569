"""Repository metadata: manifest revisions, tags, referrers and the catalog.

A manifest is stored as a blob (its bytes, under its digest) plus a revision link in its
repository; a tag is a link to a revision; a manifest with a `subject` also gets a
referrers entry under the subject's digest. Writes happen in that order, so a tag never
points at something missing, and every reference is checked before anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from controlplane.dvcr import errors, layout, manifests
from controlplane.dvcr.blobs import BlobStore
from controlplane.dvcr.digest import Digest, check_tag, digest_of, is_digest, parse_digest
from controlplane.dvcr.driver import PathNotFound, StorageDriver
from controlplane.dvcr.errors import RegistryError


@dataclass(frozen=True)
class Revision:
    digest: Digest
    media_type: str
    size: int


class Repositories:
    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs

    # --- manifests --------------------------------------------------------------------------
    def put_manifest(self, name: str, reference: str, body: bytes, content_type: str | None
                     ) -> tuple[Digest, manifests.Manifest]:
        parsed = manifests.parse(body, content_type)
        if is_digest(reference):
            want = parse_digest(reference)
            d = digest_of(body, want.algorithm)
            if d != want:
                raise RegistryError("DIGEST_INVALID", f"manifest body has digest {d}, not {want} from the URL",
                                    detail={"expected": str(want), "actual": str(d)})
            tag = None
        else:
            tag = check_tag(reference)
            d = digest_of(body)
        self._check_references(name, parsed)
        self.blobs.put(body, algorithm=d.algorithm)
        for b in parsed.blobs:
            self.blobs.link(name, b.digest)
        rev = {"digest": str(d), "mediaType": parsed.media_type, "size": len(body)}
        if parsed.artifact_type:
            rev["artifactType"] = parsed.artifact_type
        self.driver.put(layout.revision_link(name, d), json.dumps(rev).encode())
        if parsed.subject is not None:
            entry = manifests.Descriptor(parsed.media_type, d, len(body), parsed.annotations, parsed.artifact_type)
            self.driver.put(layout.referrer_entry(name, parsed.subject.digest, d),
                            json.dumps(manifests.descriptor_json(entry)).encode())
        if tag is not None:
            self.driver.put(layout.tag_link(name, tag), str(d).encode())
        return d, parsed

    def _check_references(self, name: str, parsed: manifests.Manifest) -> None:
        missing = [b for b in parsed.blobs if self.blobs.stat(b.digest) is None]
        missing += [c for c in parsed.children if self.revision(name, c.digest) is None]
        if missing:
            first = missing[0]
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"manifest references {first.digest} "
                                f"({first.media_type}), which is not in the registry; push it first",
                                detail={"digest": str(first.digest), "missing": [str(m.digest) for m in missing]})
        for b in parsed.blobs:
            blob = self.blobs.stat(b.digest)
            if blob is not None and blob.size != b.size:
                raise RegistryError("MANIFEST_INVALID", f"descriptor of {b.digest} says {b.size} bytes but the "
                                    f"blob has {blob.size}", detail={"digest": str(b.digest)})

    def revision(self, name: str, d: Digest) -> Revision | None:
        try:
            doc = json.loads(self.driver.get(layout.revision_link(name, d)))
        except PathNotFound:
            return None
        return Revision(d, doc["mediaType"], doc["size"])

    def resolve(self, name: str, reference: str) -> Revision:
        if is_digest(reference):
            d = parse_digest(reference)
        else:
            check_tag(reference)
            try:
                d = parse_digest(self.driver.get(layout.tag_link(name, reference)).decode())
            except PathNotFound as exc:
                raise errors.manifest_unknown(name, reference) from exc
        rev = self.revision(name, d)
        if rev is None or self.blobs.stat(d) is None:
            raise errors.manifest_unknown(name, reference)
        return rev

    def get_manifest(self, name: str, reference: str) -> tuple[Revision, bytes]:
        rev = self.resolve(name, reference)
        return rev, self.blobs.get(rev.digest)

    def delete_manifest(self, name: str, reference: str) -> None:
        """By tag: remove the tag. By digest: remove the revision, its tags and referrer entry."""
        if not is_digest(reference):
            check_tag(reference)
            try:
                self.driver.delete(layout.tag_dir(name, reference))
            except PathNotFound as exc:
                raise errors.manifest_unknown(name, reference) from exc
            return
        d = parse_digest(reference)
        if self.revision(name, d) is None:
            raise errors.manifest_unknown(name, reference)
        for tag, target in self.tag_targets(name).items():
            if target == d:
                self.driver.delete(layout.tag_dir(name, tag))
        try:
            body = self.blobs.get(d)
            parsed = manifests.parse(body, None)
            if parsed.subject is not None:
                self.driver.delete(layout.referrer_entry(name, parsed.subject.digest, d))
        except (PathNotFound, RegistryError):
            pass
        self.driver.delete(layout.revision_link(name, d).rsplit("/", 1)[0])

    def revisions(self, name: str) -> list[Revision]:
        out = []
        for f in self.driver.walk(layout.revisions(name)):
            parts = f.path.split("/")
            if parts[-1] == "link":
                rev = self.revision(name, Digest(parts[-3], parts[-2]))
                if rev is not None:
                    out.append(rev)
        return out

    # --- tags, catalog, referrers ----------------------------------------------------------
    def exists(self, name: str) -> bool:
        info = self.driver.stat(layout.repo_dir(name))
        if info is None:
            return False
        try:
            return any(layout.is_repository_marker(c) for c in self.driver.list(layout.repo_dir(name)))
        except PathNotFound:
            return False

    def tags(self, name: str) -> list[str]:
        if not self.exists(name):
            raise errors.name_unknown(name)
        try:
            return sorted(t for t in self.driver.list(layout.tags(name))
                          if self.driver.stat(layout.tag_link(name, t)) is not None)
        except PathNotFound:
            return []

    def tag_targets(self, name: str) -> dict[str, Digest]:
        out: dict[str, Digest] = {}
        try:
            names = self.driver.list(layout.tags(name))
        except PathNotFound:
            return out
        for t in names:
            try:
                out[t] = parse_digest(self.driver.get(layout.tag_link(name, t)).decode())
            except (PathNotFound, RegistryError):
                continue
        return out

    def catalog(self) -> list[str]:
        out: list[str] = []

        def visit(prefix: str) -> None:
            try:
                children = self.driver.list(layout.repo_dir(prefix) if prefix else layout.REPOSITORIES)
            except PathNotFound:
                return
            if prefix and any(layout.is_repository_marker(c) for c in children):
                out.append(prefix)
            for c in children:
                if not c.startswith("_"):
                    visit(f"{prefix}/{c}" if prefix else c)

        visit("")
        return sorted(out)

    def referrers(self, name: str, subject: Digest, *, artifact_type: str | None = None) -> list[dict[str, object]]:
        out = []
        for f in self.driver.walk(layout.referrers(name, subject)):
            try:
                desc = json.loads(self.driver.get(f.path))
            except PathNotFound:
                continue
            if artifact_type is None or desc.get("artifactType") == artifact_type:
                out.append(desc)
        return sorted(out, key=lambda x: str(x["digest"]))

    def delete_repository_if_empty(self, name: str) -> bool:
        """Drop a repository folder that has no tags, revisions or layers left (GC)."""
        for sub in (layout.tags(name), layout.revisions(name), layout.layer_links(name)):
            if next(iter(self.driver.walk(sub)), None) is not None:
                return False
        try:
            for marker in ("_manifests", "_layers", "_referrers"):
                if self.driver.stat(f"{layout.repo_dir(name)}/{marker}") is not None:
                    self.driver.delete(f"{layout.repo_dir(name)}/{marker}")
        except PathNotFound:
            pass
        return True
