"""`dvp user` (on the server host): people who use the platform, each with a token (or a
client certificate) of their own and a kubeconfig to hand them.

`dvp user create NAME --namespace NS --role edit` issues a token (only its SHA-256 digest is
kept, in DATA_DIR/tokens.json, like every token of the server), binds the role to the user —
a RoleBinding in NS, or a ClusterRoleBinding without `--namespace` — through the API with the
admin kubeconfig, and writes the user's kubeconfig (0600) where `--kubeconfig-out` says.
The token itself is written only into that file: never printed, never logged. `dvp user
list` shows users and their bindings; `dvp user delete NAME` revokes the token at once and
removes the bindings. Bindings carry the label `dvp.deckhouse.io/user`.

`--cert` gives the user a client certificate instead of a token: a key made here, a
certificate signed by the cluster CA with CN=NAME and O=each --group (kube-apiserver's
mapping), valid for --ttl (default 365 days); both go only into the kubeconfig (0600). Its
serial is recorded in DATA_DIR/client-certs.json so `dvp user delete` can refuse it at once
(kube-apiserver itself cannot revoke a certificate before it expires).
"""

from __future__ import annotations

import copy
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
CERT_TTL = 365 * 86400.0  # a client certificate's default validity, as kubeadm gives its client certificates


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


def _expiry(auth: Any, certs: Any, name: str) -> str:
    """When `name`'s token or certificate expires (RFC 3339, UTC), or '' for never."""
    import datetime

    ends = [u.expires for u in auth.users() if u.name == name and u.expires]
    ends += [c.expires for c in certs.issued() if c.user == name]
    if not ends:
        return ""
    return datetime.datetime.fromtimestamp(max(ends), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group("user", context_settings={"help_option_names": ["-h", "--help"]})
def user() -> None:
    """Platform users: a token and a kubeconfig each, bound to a role (RBAC)."""


def _stores(data_dir: Path) -> tuple[Any, Any]:
    """The server's token file and its record of client certificates."""
    from controlplane.apiserver.auth import TokenAuthenticator
    from controlplane.apiserver.certauth import FILE_NAME, ClientCertAuthenticator

    return TokenAuthenticator(data_dir / "tokens.json"), ClientCertAuthenticator(data_dir / FILE_NAME)


def _kind(auth: Any, certs: Any, name: str) -> str:
    return "cert" if any(c.user == name for c in certs.issued()) and not auth.has_user(name) else "token"


@user.command("create")
@click.argument("name")
@click.option("--namespace", "-n", default="", help="Bind the role in this namespace only (RoleBinding).")
@click.option("--role", default="edit", show_default=True, help="The ClusterRole to bind (view, edit, admin, ...).")
@click.option("--group", "groups", multiple=True, help="A group the user is in (repeatable).")
@click.option("--kubeconfig-out", type=click.Path(path_type=Path), default=None,
              help="Where the user's kubeconfig is written (default ./NAME.kubeconfig).")
@click.option("--ttl", default="",
              help="The credential expires after this long (90m, 24h, 30d); default: never (token), 365d (--cert).")
@click.option("--cert", is_flag=True,
              help="A client certificate (CN=NAME, O=each --group) signed by the cluster CA instead of a token.")
@_DATA_DIR
@_OUTPUT
def create(name: str, namespace: str, role: str, groups: tuple[str, ...], kubeconfig_out: Path | None,
           ttl: str, cert: bool, data_dir: Path, output: str) -> None:
    """Issue NAME a token (or a client certificate), bind ROLE to it, and write its kubeconfig."""
    from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig

    if not _is_person(name) or not name or "/" in name:
        raise click.BadParameter(f"{name!r}: user names may not be empty, contain '/', be admin or start with system:",
                                 param_hint="NAME")
    seconds = parse_ttl(ttl) if ttl else None
    auth, certs = _stores(data_dir)
    if auth.has_user(name) or any(c.user == name for c in certs.issued()):
        raise click.ClickException(f"user {name} exists: `dvp user delete {name}` first to issue a new credential")
    kube = _admin(data_dir)
    binding = _binding(name, role, namespace, list(groups))
    try:
        kube.create(CLUSTER_ROLE_BINDINGS if not namespace else ROLE_BINDINGS, binding, namespace or None)
    except KubeError as exc:
        raise click.ClickException(f"binding {role} to {name}: {exc}") from None
    server = read_kubeconfig(data_dir / "kubeconfig")
    out = kubeconfig_out or Path(f"{name}.kubeconfig")
    credentials: dict[str, Any]
    if cert:
        credentials = _issue_cert(data_dir, certs, name, list(groups), seconds or CERT_TTL)
    else:
        credentials = {"token": auth.issue(name, list(groups), ttl=seconds)}
    write_kubeconfig(out, server=server["server"], ca_pem=server["ca_pem"], user=name,
                     namespace=namespace or "default", **credentials)
    summary: dict[str, Any] = {"user": name, "kind": "cert" if cert else "token", "groups": list(groups),
                               "role": role, "namespace": namespace, "kubeconfig": str(out.resolve()),
                               "expires": _expiry(auth, certs, name)}
    if output == "json":
        click.echo(json.dumps(summary))
    else:
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        click.echo(f"user {name} created: {role} {where}; kubeconfig {summary['kubeconfig']}")


def _issue_cert(data_dir: Path, certs: Any, name: str, groups: list[str], seconds: float) -> dict[str, bytes]:
    """A key and a certificate for NAME, recorded by serial so `dvp user delete` can refuse it."""
    import datetime

    from controlplane.common import pki

    ca = pki.KeyPair(data_dir / "pki" / "ca.crt", data_dir / "pki" / "ca.key")
    if not ca.key_path.is_file():
        raise click.ClickException(f"{ca.key_path} does not exist: --cert needs the cluster CA of this server")
    made = pki.issue_client_cert(ca, common_name=name, organizations=groups,
                                 validity=datetime.timedelta(seconds=seconds))
    certs.record(made.serial, name, groups, made.not_after.timestamp())
    return {"client_cert_pem": made.cert_pem, "client_key_pem": made.key_pem}


@user.command("list")
@_DATA_DIR
@_OUTPUT
def list_users(data_dir: Path, output: str) -> None:
    """Users with a token or a client certificate, and the roles bound to them."""
    auth, certs = _stores(data_dir)
    names = sorted({u.name for u in auth.users() if _is_person(u.name)} | {c.user for c in certs.issued()})
    bindings = [_describe(b) for b in _bindings_of(_admin(data_dir), "")]
    rows: list[dict[str, Any]] = [{"user": n, "kind": _kind(auth, certs, n), "expires": _expiry(auth, certs, n),
                                   "bindings": [b for b in bindings if b["user"] == n]} for n in names]
    if output == "json":
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'USER':<20} {'KIND':<6} {'EXPIRES':<21} {'ROLE':<12} {'NAMESPACE':<20} BINDING")
    for row in rows:
        shown: list[dict[str, str]] = row["bindings"] or [{"role": "<none>", "namespace": "", "binding": ""}]
        for b in shown:
            click.echo(f"{row['user']:<20} {row['kind']:<6} {row['expires'] or '<never>':<21} {b['role']:<12} "
                       f"{b['namespace'] or '<cluster>':<20} {b['binding']}")


@user.command("delete")
@click.argument("name")
@_DATA_DIR
@_OUTPUT
def delete(name: str, data_dir: Path, output: str) -> None:
    """Revoke NAME's token or client certificate (at once) and remove its bindings."""
    if not _is_person(name):
        raise click.BadParameter(f"{name!r} is one of the server's own identities", param_hint="NAME")
    auth, certs = _stores(data_dir)
    had = auth.has_user(name)
    auth.revoke_user(name)
    had = certs.revoke_user(name) > 0 or had
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
        click.echo(f"user {name} deleted (credentials revoked; bindings removed: {', '.join(removed) or 'none'})")


def _alias(command: click.Command, name: str) -> None:
    """`command` also under `name` (hidden from the listing): the words of DVP's and kubectl's users."""
    alias = copy.copy(command)
    alias.hidden = True
    user.add_command(alias, name)


_alias(create, "add")
_alias(delete, "revoke")
