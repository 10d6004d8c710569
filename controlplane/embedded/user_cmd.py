"""`dvp user` (on the server host): people who use the platform, each with a token of their
own and a kubeconfig to hand them.

`dvp user create NAME --namespace NS --role edit` issues a token (only its SHA-256 digest is
kept, in DATA_DIR/tokens.json, like every token of the server), binds the role to the user —
a RoleBinding in NS, or a ClusterRoleBinding without `--namespace` — through the API with the
admin kubeconfig, and writes the user's kubeconfig (0600) where `--kubeconfig-out` says.
The token itself is written only into that file: never printed, never logged. `dvp user
list` shows users and their bindings; `dvp user delete NAME` revokes the token at once and
removes the bindings. Bindings carry the label `dvp.deckhouse.io/user`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from controlplane.common.kube.client import KubeClient, KubeError, Resource

USER_LABEL = "dvp.deckhouse.io/user"
RBAC = "rbac.authorization.k8s.io"
ROLE_BINDINGS = Resource(RBAC, "v1", "rolebindings", "RoleBinding")
CLUSTER_ROLE_BINDINGS = Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False)
_DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/server"),
                         show_default=True, help="The server's data directory (tokens, kubeconfig).")
_OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> float:
    """`90m`, `24h`, `30d` (or plain seconds) as seconds; BadParameter naming --ttl otherwise."""
    number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    if not number.isdigit() or int(number) <= 0:
        raise click.BadParameter(f"{text!r}: a positive duration such as 90m, 24h or 30d", param_hint="--ttl")
    return float(int(number) * _UNITS[unit])


def _is_person(name: str) -> bool:
    """Users made with `dvp user create` (not the server's own identities)."""
    return name != "admin" and not name.startswith("system:")


def _admin(data_dir: Path) -> KubeClient:
    kubeconfig = data_dir / "kubeconfig"
    if not kubeconfig.is_file():
        raise click.ClickException(f"{kubeconfig} does not exist: is `dvp server --data-dir {data_dir}` initialised?")
    return KubeClient.from_kubeconfig(kubeconfig, user_agent="dvp-user")


def _binding(name: str, role: str, namespace: str, groups: list[str]) -> dict[str, Any]:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta: dict[str, Any] = {"name": f"dvp-user:{name}:{role}", "labels": {USER_LABEL: name}}
    if namespace:
        meta["namespace"] = namespace
    subjects = [{"kind": "User", "apiGroup": RBAC, "name": name}]
    subjects += [{"kind": "Group", "apiGroup": RBAC, "name": g} for g in groups]
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}}


def _bindings_of(kube: KubeClient, name: str) -> list[dict[str, Any]]:
    selector = f"{USER_LABEL}={name}" if name else USER_LABEL
    found = kube.list(ROLE_BINDINGS, None, label_selector=selector)["items"]
    found += kube.list(CLUSTER_ROLE_BINDINGS, None, label_selector=selector)["items"]
    return list(found)


def _describe(binding: dict[str, Any]) -> dict[str, str]:
    meta = binding["metadata"]
    return {"user": meta["labels"][USER_LABEL], "role": binding["roleRef"]["name"],
            "namespace": meta.get("namespace", ""), "binding": f"{binding['kind']}/{meta['name']}"}


def _expiry(auth: Any, name: str) -> str:
    """When `name`'s token expires (RFC 3339, UTC), or '' for never."""
    import datetime

    ends = [u.expires for u in auth.users() if u.name == name and u.expires]
    if not ends:
        return ""
    return datetime.datetime.fromtimestamp(max(ends), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group("user", context_settings={"help_option_names": ["-h", "--help"]})
def user() -> None:
    """Platform users: a token and a kubeconfig each, bound to a role (RBAC)."""


@user.command("create")
@click.argument("name")
@click.option("--namespace", "-n", default="", help="Bind the role in this namespace only (RoleBinding).")
@click.option("--role", default="edit", show_default=True, help="The ClusterRole to bind (view, edit, admin, ...).")
@click.option("--group", "groups", multiple=True, help="A group the user is in (repeatable).")
@click.option("--kubeconfig-out", type=click.Path(path_type=Path), default=None,
              help="Where the user's kubeconfig is written (default ./NAME.kubeconfig).")
@click.option("--ttl", default="", help="The token expires after this long (90m, 24h, 30d); default: never.")
@_DATA_DIR
@_OUTPUT
def create(name: str, namespace: str, role: str, groups: tuple[str, ...], kubeconfig_out: Path | None,
           ttl: str, data_dir: Path, output: str) -> None:
    """Issue NAME a token, bind ROLE to it, and write its kubeconfig."""
    from controlplane.apiserver.auth import TokenAuthenticator
    from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig

    if not _is_person(name) or not name or "/" in name:
        raise click.BadParameter(f"{name!r}: user names may not be empty, contain '/', be admin or start with system:",
                                 param_hint="NAME")
    seconds = parse_ttl(ttl) if ttl else None
    auth = TokenAuthenticator(data_dir / "tokens.json")
    if auth.has_user(name):
        raise click.ClickException(f"user {name} exists: `dvp user delete {name}` first to issue a new token")
    kube = _admin(data_dir)
    binding = _binding(name, role, namespace, list(groups))
    try:
        kube.create(CLUSTER_ROLE_BINDINGS if not namespace else ROLE_BINDINGS, binding, namespace or None)
    except KubeError as exc:
        raise click.ClickException(f"binding {role} to {name}: {exc}") from None
    token = auth.issue(name, list(groups), ttl=seconds)
    server = read_kubeconfig(data_dir / "kubeconfig")
    out = kubeconfig_out or Path(f"{name}.kubeconfig")
    write_kubeconfig(out, server=server["server"], ca_pem=server["ca_pem"], token=token, user=name,
                     namespace=namespace or "default")
    summary: dict[str, Any] = {"user": name, "groups": list(groups), "role": role, "namespace": namespace,
                               "kubeconfig": str(out.resolve()), "expires": _expiry(auth, name)}
    if output == "json":
        click.echo(json.dumps(summary))
    else:
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        click.echo(f"user {name} created: {role} {where}; kubeconfig {summary['kubeconfig']}")


@user.command("list")
@_DATA_DIR
@_OUTPUT
def list_users(data_dir: Path, output: str) -> None:
    """Users with a token, and the roles bound to them."""
    from controlplane.apiserver.auth import TokenAuthenticator

    auth = TokenAuthenticator(data_dir / "tokens.json")
    names = sorted({u.name for u in auth.users() if _is_person(u.name)})
    bindings = [_describe(b) for b in _bindings_of(_admin(data_dir), "")]
    rows: list[dict[str, Any]] = [{"user": n, "expires": _expiry(auth, n),
                                   "bindings": [b for b in bindings if b["user"] == n]} for n in names]
    if output == "json":
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'USER':<20} {'ROLE':<12} {'NAMESPACE':<20} BINDING")
    for row in rows:
        shown: list[dict[str, str]] = row["bindings"] or [{"role": "<none>", "namespace": "", "binding": ""}]
        for b in shown:
            click.echo(f"{row['user']:<20} {b['role']:<12} {b['namespace'] or '<cluster>':<20} {b['binding']}")


@user.command("delete")
@click.argument("name")
@_DATA_DIR
@_OUTPUT
def delete(name: str, data_dir: Path, output: str) -> None:
    """Revoke NAME's token (at once) and remove its bindings."""
    from controlplane.apiserver.auth import TokenAuthenticator

    if not _is_person(name):
        raise click.BadParameter(f"{name!r} is one of the server's own identities", param_hint="NAME")
    auth = TokenAuthenticator(data_dir / "tokens.json")
    had = auth.has_user(name)
    auth.revoke_user(name)
    kube = _admin(data_dir)
    removed = []
    for b in _bindings_of(kube, name):
        meta = b["metadata"]
        res = ROLE_BINDINGS if b["kind"] == "RoleBinding" else CLUSTER_ROLE_BINDINGS
        kube.delete_if_exists(res, meta["name"], meta.get("namespace"))
        removed.append(f"{b['kind']}/{meta['name']}")
    if not had and not removed:
        raise click.ClickException(f"user {name} does not exist")
    if output == "json":
        click.echo(json.dumps({"user": name, "revoked": had, "removedBindings": removed}))
    else:
        click.echo(f"user {name} deleted (token revoked; bindings removed: {', '.join(removed) or 'none'})")
