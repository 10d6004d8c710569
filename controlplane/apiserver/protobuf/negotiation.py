"""Response content negotiation, as kube-apiserver does it: the Accept clauses ordered by
quality and then specificity (goautoneg), each tried against the media types the endpoint
serves in the server's order (JSON, YAML, then protobuf for kinds that have a message);
the first match wins, an empty Accept means JSON, no match at all is 406 NotAcceptable.
Custom resources serve no protobuf, so `protobuf,json` gets JSON and protobuf alone 406."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.apiserver import errors

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


@dataclass(frozen=True)
class Clause:
    type: str
    subtype: str
    q: float
    params: dict[str, str]


def parse_accept(header: str) -> list[Clause]:
    clauses: list[Clause] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        typ, _, sub = media.partition("/")
        if not sub:
            typ, sub = (typ, "*") if typ == "*" else (typ, "")
        if not sub:
            continue
        q = 1.0
        params: dict[str, str] = {}
        for p in pieces[1:]:
            k, _, v = p.partition("=")
            k, v = k.strip().lower(), v.strip().strip('"')
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
            elif k:
                params[k] = v
        clauses.append(Clause(typ, sub, q, params))
    clauses.sort(key=lambda c: (-c.q, c.type == "*", c.subtype == "*"))
    return [c for c in clauses if c.q > 0]


_PARSED: dict[str, list[Clause]] = {}  # clients send the same few Accept headers over and over


def negotiate(header: str, *, protobuf: bool) -> str:
    """The media type to answer in: JSON, YAML or PROTOBUF; 406 when none is acceptable."""
    served = [JSON, YAML, PROTOBUF] if protobuf else [JSON, YAML]
    if not header.strip():
        return JSON
    clauses = _PARSED.get(header)
    if clauses is None:
        clauses = parse_accept(header)
        if len(_PARSED) < 256:
            _PARSED[header] = clauses
    for clause in clauses:
        for media in served:
            typ, sub = media.split("/")
            if clause.type == "*" or (clause.type == typ and clause.subtype in (sub, "*")):
                return media
    raise errors.ApiError(406, "NotAcceptable",
                          f"only the following media types are accepted: {', '.join(served)}")
