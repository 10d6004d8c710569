"""`dvp agent --check`: before a worker's node handler starts (the install runs it right after
writing the join bundle), ask the API server whether this node may join: does it accept the
node's token (its own identity, issued by `dvp join`), and does this host's clock agree with
the server's. Each failure names the host, the check and what to do, so an install stops with
"host w1: join check token: ..." instead of a node that never turns Ready.

The clock matters across hosts: Leases, certificates' validity and VM events are judged by
timestamps written on one host and read on another.
"""

from __future__ import annotations

import email.utils
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from controlplane.common.kubeconfig import read_kubeconfig

MAX_CLOCK_SKEW_SECONDS = 60.0
"""More than a Lease's renew period and a half: beyond this a Node's heartbeat times mean little."""


@dataclass(frozen=True)
class JoinProblem:
    check: str  # "api", "token" or "clock"
    message: str


def check_join(kubeconfig: Path, node_name: str, *, host: str | None = None, timeout: float = 10.0,
               max_skew: float = MAX_CLOCK_SKEW_SECONDS) -> list[JoinProblem]:
    """What stops this node from joining (empty: nothing)."""
    host = host or socket.gethostname()
    conf = read_kubeconfig(kubeconfig)
    server = str(conf["server"]).rstrip("/")
    user = f"system:node:{node_name}"
    context = ssl.create_default_context(cadata=conf["ca_pem"].decode())
    request = urllib.request.Request(f"{server}/api/v1/nodes/{node_name}",
                                     headers={"Authorization": f"Bearer {conf['token']}", "Accept": "application/json"})
    sent = time.time()
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as resp:
            status, date = resp.status, resp.headers.get("Date")
    except urllib.error.HTTPError as exc:
        status, date = exc.code, exc.headers.get("Date")
    except (OSError, ssl.SSLError) as exc:
        return [JoinProblem("api", f"host {host}: join check api: the API server at {server} did not answer "
                                   f"({exc}); expected it reachable from this host: check the network and that "
                                   "dvp-server runs on the master")]
    received = time.time()
    problems = []
    if status == 401:
        problems.append(JoinProblem("token", f"host {host}: join check token: the API server at {server} refused the "
                                             f"token of {user} (401 Unauthorized): it is wrong or was revoked; run "
                                             "`dvp install` again to issue this node a new one"))
    elif status == 403:
        problems.append(JoinProblem("token", f"host {host}: join check token: the API server at {server} does not let "
                                             f"{user} read its own Node (403 Forbidden): the token belongs to another "
                                             "identity; run `dvp install` again to issue this node its own"))
    elif status not in (200, 404):
        problems.append(JoinProblem("api", f"host {host}: join check api: the API server at {server} answered "
                                           f"{status} to GET /api/v1/nodes/{node_name}"))
    parsed = email.utils.parsedate_to_datetime(date) if date else None
    if parsed is not None:
        skew = (sent + received) / 2 - parsed.timestamp()
        if abs(skew) > max_skew + (received - sent) / 2 + 1:  # the Date header has whole seconds
            problems.append(JoinProblem("clock", f"host {host}: join check clock: this host's clock is {skew:+.0f} s "
                                                 f"off the API server's ({server}); expected within ±{max_skew:.0f} s: "
                                                 "synchronise the clocks (chrony, systemd-timesyncd or ntpd)"))
    return problems


def report(problems: list[JoinProblem]) -> str:
    return json.dumps({"ok": not problems, "problems": [{"check": p.check, "message": p.message} for p in problems]})
