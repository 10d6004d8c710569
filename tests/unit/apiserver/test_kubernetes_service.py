"""The `kubernetes` Service, Endpoints and EndpointSlice follow the server's address and port at
every start, and Services are validated like any built-in kind."""

from __future__ import annotations

import pytest

from controlplane.apiserver import services
from controlplane.apiserver.errors import ApiError

from .conftest import Api


@pytest.fixture
def with_services(api: Api) -> Api:
    for info in services.service_resources():
        api.registry.add(info)
    return api


async def test_kubernetes_service_is_created_then_follows_the_port(with_services: Api) -> None:
    api = with_services
    await services.ensure_kubernetes_service(api.service, ip="10.1.2.3", port=6443)
    svc_info, ep_info = api.info("", "v1", "services"), api.info("", "v1", "endpoints")
    svc = api.service.get(svc_info, "default", "kubernetes")
    assert svc.obj["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]
    rv = svc.rv
    await services.ensure_kubernetes_service(api.service, ip="10.1.2.3", port=6443)
    assert api.service.get(svc_info, "default", "kubernetes").rv == rv  # unchanged start: no write
    await services.ensure_kubernetes_service(api.service, ip="10.1.2.4", port=7443)
    ep = api.service.get(ep_info, "default", "kubernetes").obj
    assert ep["subsets"] == [{"addresses": [{"ip": "10.1.2.4"}], "ports": [{"name": "https", "port": 7443,
                                                                             "protocol": "TCP"}]}]
    eps = api.service.get(api.info("discovery.k8s.io", "v1", "endpointslices"), "default", "kubernetes").obj
    assert eps["endpoints"][0]["addresses"] == ["10.1.2.4"] and eps["addressType"] == "IPv4"


@pytest.mark.parametrize(("host", "ip"), [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.0.0.5", "10.0.0.5"),
                                          ("localhost", "127.0.0.1")], ids=["any4", "any6", "ip", "name"])
def test_endpoint_ip_of_the_listen_host(host: str, ip: str) -> None:
    assert services.endpoint_ip(host) == ip


async def test_a_service_port_without_number_is_refused_naming_the_field(with_services: Api) -> None:
    bad = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http"}]}}
    with pytest.raises(ApiError) as err:
        await with_services.service.create(with_services.info("", "v1", "services"), "default", bad)
    assert err.value.code == 422 and "spec.ports[0].port" in err.value.message
