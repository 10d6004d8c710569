"""A CRD whose validation rule costs the square of a list without a `maxItems`, against a real
`dvp server` with kubectl 1.33: a short list is taken; a long one is refused with kube's
out-of-budget cause naming the field (before the budget, 1,500 entries held a core for
minutes), nothing of it is stored, and the stored object is untouched by a refused update."""

from __future__ import annotations

import json
import threading

import pytest

from controlplane.apiserver.cel_cost import OUT_OF_BUDGET
from tests.services.apiserver import ApiServerProcess
from tests.services.kubectl import get, kubectl

pytestmark = pytest.mark.integration

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: tagsets.example.dvp.io}
spec:
  group: example.dvp.io
  scope: Namespaced
  names: {plural: tagsets, singular: tagset, kind: TagSet}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              tags:
                type: array
                items: {type: string}
                x-kubernetes-validations:
                - rule: "self.all(x, self.all(y, x == y || x != y))"
                  message: every pair of tags compared
"""


LIST = "/apis/example.dvp.io/v1/namespaces/default/tagsets"


def tagset(name: str, n: int) -> str:
    return json.dumps({"apiVersion": "example.dvp.io/v1", "kind": "TagSet", "metadata": {"name": name},
                       "spec": {"tags": [f"tag-{i}" for i in range(n)]}})


@pytest.fixture(scope="module")
def tagsets(apiserver: ApiServerProcess) -> ApiServerProcess:
    kubectl(apiserver, "apply", "-f", "-", input=CRD)
    kubectl(apiserver, "wait", "--for=condition=established", "crd/tagsets.example.dvp.io", "--timeout=20s")
    return apiserver


def test_a_short_list_is_taken(tagsets: ApiServerProcess) -> None:
    assert "tagset.example.dvp.io/small created" in kubectl(tagsets, "create", "-f", "-", input=tagset("small", 20)).stdout
    assert len(get(tagsets, "tagset", "small")["spec"]["tags"]) == 20


def test_a_long_list_runs_out_of_the_budget_and_is_not_stored(tagsets: ApiServerProcess) -> None:
    answers: list[int] = []

    def reads() -> None:  # the API server answers others while it evaluates the refused write
        answers.extend(tagsets.raw("GET", LIST, timeout=30)[0] for _ in range(3))

    probe = threading.Thread(target=reads)
    probe.start()
    out = kubectl(tagsets, "create", "-f", "-", input=tagset("big", 1500), check=False)
    probe.join()
    assert out.returncode != 0
    assert f'The TagSet "big" is invalid: spec.tags: Invalid value: "array": {OUT_OF_BUDGET}' in out.stderr
    assert get(tagsets, "tagset", "big") == {}
    assert answers == [200, 200, 200]


def test_a_refused_update_leaves_the_stored_object(tagsets: ApiServerProcess) -> None:
    kubectl(tagsets, "create", "-f", "-", input=tagset("kept", 10))
    out = kubectl(tagsets, "replace", "-f", "-", input=tagset("kept", 1500), check=False)
    assert out.returncode != 0 and OUT_OF_BUDGET in out.stderr
    assert get(tagsets, "tagset", "kept")["spec"]["tags"] == [f"tag-{i}" for i in range(10)]
