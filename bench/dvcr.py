"""bench/dvcr: DVCR against CNCF Distribution (Debian `docker-registry`), same run, same TLS.

1. Push and pull of a 1 GiB image (one uncompressed tar layer of random bytes) with
   `skopeo copy --preserve-digests` into and out of DVCR and Distribution. Both listen on
   loopback with HTTPS certificates from one CA (skopeo verifies them via --cert-dir) and
   bcrypt htpasswd users; each run starts both with empty storage, so nothing is reused.
   Prints MB/s both ways and the ratio (target: DVCR at least as fast both ways).
2. An HTTP import of a 1 GiB qcow2 image into DVCR (`dvp dvcr import URL --checksum`)
   against the same work done by plain tools: curl download + sha256sum + tar into a
   containerDisk layer + skopeo push of the file into the same DVCR. Prints seconds and the
   ratio. The source is one plain-HTTP server on loopback serving both.

    python -m bench.dvcr [--size-mib 1024] [--runs 3] [-o json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Row, print_table
from controlplane.common import pki
from tests.services.apiserver import REPO, free_port
from tests.services.dvcr import DistributionProcess, DvcrProcess

MIB = 1 << 20
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"


def sh(*cmd: str, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({r.returncode}): {r.stderr[-2000:]}")


def timed(*cmd: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    sh(*cmd, env=env)
    return time.perf_counter() - t0


def make_image(root: Path, size: int) -> Path:
    """An OCI layout with one uncompressed layer: a tar holding disk/disk.img of random bytes."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer_path = root / "layer.tmp"
    h = hashlib.sha256()
    import tarfile

    head = tarfile.TarInfo("disk/disk.img")
    head.size = size
    with layer_path.open("wb") as f:
        for chunk in (head.tobuf(tarfile.PAX_FORMAT),):
            f.write(chunk)
            h.update(chunk)
        left = size
        while left:
            chunk = os.urandom(min(64 * MIB, left))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
        tail = b"\0" * ((-size) % 512 + 1024)
        f.write(tail)
        h.update(tail)
    layer_digest, layer_size = h.hexdigest(), layer_path.stat().st_size
    layer_path.rename(blobs / layer_digest)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]}}).encode()
    (blobs / hashlib.sha256(config).hexdigest()).write_bytes(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{hashlib.sha256(config).hexdigest()}", "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": f"sha256:{layer_digest}", "size": layer_size}]}).encode()
    (blobs / hashlib.sha256(manifest).hexdigest()).write_bytes(manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(manifest),
        "digest": f"sha256:{hashlib.sha256(manifest).hexdigest()}",
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return blobs / layer_digest


# The plain-tools peer of `dvp dvcr import`: the same steps, one tool each.
PLAIN_IMPORT = r"""
set -euo pipefail
cd "$WORK"
curl -sS --fail -o dl.qcow2 "$URL"
echo "$SUM  dl.qcow2" | sha256sum -c --quiet
mkdir -p layout/blobs/sha256 tree/disk
mv dl.qcow2 tree/disk/disk.qcow2
tar -C tree --owner=107 --group=107 --numeric-owner -cf layer.tar disk
L=$(sha256sum layer.tar | cut -c1-64); LS=$(stat -c %s layer.tar)
mv layer.tar layout/blobs/sha256/$L
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' $L > cfg
C=$(sha256sum cfg | cut -c1-64); CS=$(stat -c %s cfg); mv cfg layout/blobs/sha256/$C
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' $C $CS $L $LS > man
M=$(sha256sum man | cut -c1-64); MS=$(stat -c %s man); mv man layout/blobs/sha256/$M
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' $M $MS > layout/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > layout/oci-layout
skopeo copy -q --preserve-digests --dest-cert-dir "$CERTS" --authfile "$AUTH" oci:layout:latest "docker://$DEST"
"""


class Registries:
    """DVCR and Distribution with certificates from one CA, fresh storage for each run."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.ca = pki.ensure_ca(work / "pki", common_name="bench-ca")
        self.certs = work / "certs"
        self.certs.mkdir(exist_ok=True)
        shutil.copy(self.ca.cert_path, self.certs / "ca.crt")
        pair = pki.issue_cert(self.ca, work / "pki", "distribution", common_name="distribution", sans=["127.0.0.1"])
        self.cert, self.key = pair.cert_path, pair.key_path
        self.dvcr: DvcrProcess | None = None
        self.dist: DistributionProcess | None = None

    def start(self, run: int) -> None:
        self.dvcr = DvcrProcess(self.work / f"dvcr-{run}", extra_args=["--ca-dir", str(self.work / "pki")])
        self.dvcr.start()
        self.dist = DistributionProcess(self.work / f"dist-{run}", cert=self.cert, key=self.key)
        self.dist.start()

    def stop(self) -> None:
        for p in (self.dvcr, self.dist):
            if p is not None:
                p.stop()
                shutil.rmtree(p.data_dir if isinstance(p, DvcrProcess) else p.workdir, ignore_errors=True)


def push_pull(reg: Registries, layout: Path, run: int, *, dvcr_first: bool) -> dict[str, float]:
    assert reg.dvcr is not None and reg.dist is not None
    targets = {
        "dvcr": (f"{reg.dvcr.registry}/bench/image:latest", ["--authfile", str(reg.dvcr.authfile("importer"))]),
        "dist": (f"{reg.dist.registry}/bench/image:latest", ["--creds", f"{reg.dist.user}:{reg.dist.password}"]),
    }
    out: dict[str, float] = {}
    order = ["dvcr", "dist"] if dvcr_first else ["dist", "dvcr"]
    for name in order:
        ref, auth = targets[name]
        dest_auth = [a.replace("--creds", "--dest-creds") for a in auth]
        out[f"{name}-push"] = timed(SKOPEO, "copy", "-q", "--preserve-digests", "--dest-cert-dir", str(reg.certs),
                                    *dest_auth, f"oci:{layout}:latest", f"docker://{ref}")
    for name in order:
        ref, auth = targets[name]
        src_auth = [a.replace("--creds", "--src-creds") for a in auth]
        dest = reg.work / f"pulled-{name}-{run}"
        out[f"{name}-pull"] = timed(SKOPEO, "copy", "-q", "--preserve-digests", "--src-cert-dir", str(reg.certs),
                                    *src_auth, f"docker://{ref}", f"oci:{dest}:latest")
        shutil.rmtree(dest)
    return out


def imports(reg: Registries, url: str, checksum: str, run: int) -> dict[str, float]:
    assert reg.dvcr is not None
    ours = timed(sys.executable, "-m", "installer.cli.main", "dvcr", "import", url, "--to", f"cvi/import-{run}",
                 "--checksum", f"sha256:{checksum}", "-o", "json", "--data-dir", str(reg.dvcr.data_dir))
    work = reg.work / f"plain-{run}"
    work.mkdir()
    env = {**os.environ, "WORK": str(work), "URL": url, "SUM": checksum, "CERTS": str(reg.certs),
           "AUTH": str(reg.dvcr.authfile("importer")), "DEST": f"{reg.dvcr.registry}/cvi/plain-{run}:latest"}
    plain = timed("bash", "-c", PLAIN_IMPORT, env=env)
    shutil.rmtree(work)
    return {"import-ours": ours, "import-plain": plain}


def run(size_mib: int, runs: int) -> tuple[list[Row], dict[str, list[float]]]:
    work = Path(tempfile.mkdtemp(prefix="dvp-bench-dvcr-", dir=os.environ.get("BENCH_TMP")))
    size = size_mib * MIB
    reg = Registries(work)
    http: subprocess.Popen[bytes] | None = None
    samples: dict[str, list[float]] = {}
    try:
        layer = make_image(work / "image", size)
        www = work / "www"
        www.mkdir()
        sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(layer), str(www / "big.qcow2"))
        qcow2_size = (www / "big.qcow2").stat().st_size
        checksum = hashlib.file_digest((www / "big.qcow2").open("rb"), "sha256").hexdigest()
        port = free_port()
        http = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=REPO)
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/big.qcow2"
        for i in range(runs):
            reg.start(i)
            try:
                for k, v in {**push_pull(reg, work / "image", i, dvcr_first=i % 2 == 0),
                             **imports(reg, url, checksum, i)}.items():
                    samples.setdefault(k, []).append(v)
            finally:
                reg.stop()
    finally:
        if http is not None:
            http.terminate()
            http.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    mb = size / 1e6
    qmb = qcow2_size / 1e6
    rows = [
        Row(f"skopeo push {size_mib} MiB image", mb / med["dvcr-push"], mb / med["dist-push"], "MB/s"),
        Row(f"skopeo pull {size_mib} MiB image", mb / med["dvcr-pull"], mb / med["dist-pull"], "MB/s"),
        Row(f"HTTP import of a {qcow2_size // MIB} MiB qcow2 (vs curl+sha256sum+tar+skopeo)",
            med["import-ours"], med["import-plain"], "s", "lower"),
        Row("HTTP import throughput", qmb / med["import-ours"], qmb / med["import-plain"], "MB/s"),
    ]
    return rows, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3, help="medians over this many runs")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    rows, samples = run(args.size_mib, args.runs)
    print_table(f"bench/dvcr: median of {args.runs} runs (rows 1-2: peer = CNCF Distribution 2.8; "
                "rows 3-4: peer = plain tools)", "DVCR (dvp)", "peer", rows, json_out=args.output == "json")
    if args.output == "table":
        print("seconds per run: " + ", ".join(f"{k}={[round(x, 2) for x in v]}" for k, v in sorted(samples.items())))


if __name__ == "__main__":
    main()
