"""`dvp server`'s one /metrics: the components' registries, served on Unix sockets, appended
after the API server's own families, each family once."""

from __future__ import annotations

from pathlib import Path

from controlplane.common import component_metrics
from controlplane.common.metrics import REGISTRY

OWN = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
OTHER = ("# HELP a_total A again.\n# TYPE a_total counter\na_total 7\n"
         "# HELP workqueue_depth Depth.\n# TYPE workqueue_depth gauge\nworkqueue_depth{name=\"vm\"} 3\n")


def test_merge_keeps_each_family_once_with_every_source_s_samples() -> None:
    own = OWN + '# HELP workqueue_depth Depth.\n# TYPE workqueue_depth gauge\nworkqueue_depth{name="gc"} 0\n'
    merged = component_metrics.merge(own, [OTHER, OTHER])
    assert merged.count("# TYPE a_total") == 1 and merged.count("# HELP a_total") == 1
    assert "a_total 1" in merged and "a_total 7" not in merged  # a repeated series: the first source's
    assert merged.count("# TYPE workqueue_depth") == 1
    assert merged.endswith('workqueue_depth{name="gc"} 0\nworkqueue_depth{name="vm"} 3\n')


async def test_a_served_registry_is_gathered_and_a_dead_socket_skipped(tmp_path: Path) -> None:
    gauge = REGISTRY.gauge("dvp_test_component_gauge", "A gauge of this test.")
    gauge.set(5)
    runner = await component_metrics.serve(tmp_path, "controllers")
    try:
        (component_metrics.socket_dir(tmp_path) / "dvcr.sock").touch()  # nothing listens there
        texts = await component_metrics.gather(tmp_path, timeout=1)
    finally:
        await component_metrics.stop(runner)
    assert len(texts) == 1 and "dvp_test_component_gauge 5" in texts[0]
    assert oct((component_metrics.socket_dir(tmp_path) / "controllers.sock").stat().st_mode & 0o777) == "0o600"
