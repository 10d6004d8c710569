"""core/v1 and coordination.k8s.io/v1 messages of the kinds the server stores (k8s.io/api
`generated.proto`): Namespace, Secret, ConfigMap, ServiceAccount, Event, Node, Service, Endpoints, Lease,
with every message they contain. `keep=True` marks Go pointers and fields serialized
without `omitempty`."""

from __future__ import annotations

from controlplane.apiserver.protobuf.schema import b, i32, i64, m, mapof, message, rep, s, t

OBJECT = "ObjectMeta"

# -- Namespace ----------------------------------------------------------------------------------
message("Namespace", m(1, "metadata", OBJECT), m(2, "spec", "NamespaceSpec"), m(3, "status", "NamespaceStatus"))
message("NamespaceSpec", rep(1, "finalizers", "string"))
message("NamespaceStatus", s(1, "phase"), rep(2, "conditions", "NamespaceCondition"))
message("NamespaceCondition", s(1, "type", keep=True), s(2, "status", keep=True), t(4, "lastTransitionTime"),
        s(5, "reason"), s(6, "message"))

# -- Secret, ConfigMap --------------------------------------------------------------------------
message("Secret", m(1, "metadata", OBJECT), b(5, "immutable", keep=True), mapof(2, "data", "bytes"),
        mapof(4, "stringData", "string"), s(3, "type"))
message("ConfigMap", m(1, "metadata", OBJECT), b(4, "immutable", keep=True), mapof(2, "data", "string"),
        mapof(3, "binaryData", "bytes"))

# -- ServiceAccount -----------------------------------------------------------------------------
message("ServiceAccount", m(1, "metadata", OBJECT), rep(2, "secrets", "ObjectReference"),
        rep(3, "imagePullSecrets", "LocalObjectReference"), b(4, "automountServiceAccountToken", keep=True))
message("LocalObjectReference", s(1, "name"))

# -- Event (core/v1) ------------------------------------------------------------------------------
message("Event",
        m(1, "metadata", OBJECT), m(2, "involvedObject", "ObjectReference"), s(3, "reason"), s(4, "message"),
        m(5, "source", "EventSource"), t(6, "firstTimestamp"), t(7, "lastTimestamp"), i32(8, "count"), s(9, "type"),
        t(10, "eventTime", "microtime"), m(11, "series", "EventSeries"), s(12, "action"),
        m(13, "related", "ObjectReference"), s(14, "reportingComponent", keep=True),
        s(15, "reportingInstance", keep=True))
message("EventSource", s(1, "component"), s(2, "host"))
message("EventSeries", i32(1, "count"), t(2, "lastObservedTime", "microtime"))
message("ObjectReference", s(1, "kind"), s(2, "namespace"), s(3, "name"), s(4, "uid"), s(5, "apiVersion"),
        s(6, "resourceVersion"), s(7, "fieldPath"))

# -- Node ---------------------------------------------------------------------------------------
message("Node", m(1, "metadata", OBJECT), m(2, "spec", "NodeSpec"), m(3, "status", "NodeStatus"))
message("NodeSpec",
        s(1, "podCIDR"), rep(7, "podCIDRs", "string"), s(3, "providerID"), b(4, "unschedulable"),
        rep(5, "taints", "Taint"), m(6, "configSource", "NodeConfigSource"), s(2, "externalID"),
        m(8, "podPreemptionPolicy", "NodePodPreemptionPolicy"))
message("NodePodPreemptionPolicy", rep(1, "disableResizePreemption", "string"))
message("Taint", s(1, "key", keep=True), s(2, "value"), s(3, "effect", keep=True), t(4, "timeAdded"))
message("NodeConfigSource", m(2, "configMap", "ConfigMapNodeConfigSource"))
message("ConfigMapNodeConfigSource", s(1, "namespace", keep=True), s(2, "name", keep=True), s(3, "uid"),
        s(4, "resourceVersion"), s(5, "kubeletConfigKey", keep=True))
message("NodeStatus",
        mapof(1, "capacity", "quantity"), mapof(2, "allocatable", "quantity"), s(3, "phase"),
        rep(4, "conditions", "NodeCondition"), rep(5, "addresses", "NodeAddress"),
        m(6, "daemonEndpoints", "NodeDaemonEndpoints"), m(7, "nodeInfo", "NodeSystemInfo"),
        rep(8, "images", "ContainerImage"), rep(9, "volumesInUse", "string"),
        rep(10, "volumesAttached", "AttachedVolume"), m(11, "config", "NodeConfigStatus"),
        rep(12, "runtimeHandlers", "NodeRuntimeHandler"), m(13, "features", "NodeFeatures"),
        rep(14, "declaredFeatures", "string"))
message("NodeCondition", s(1, "type", keep=True), s(2, "status", keep=True), t(3, "lastHeartbeatTime"),
        t(4, "lastTransitionTime"), s(5, "reason"), s(6, "message"))
message("NodeAddress", s(1, "type", keep=True), s(2, "address", keep=True))
message("NodeDaemonEndpoints", m(1, "kubeletEndpoint", "DaemonEndpoint"))
message("DaemonEndpoint", i32(1, "Port", keep=True))
message("NodeSystemInfo", *(s(n, name, keep=True) for n, name in enumerate((
    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion", "kubeletVersion",
    "kubeProxyVersion", "operatingSystem", "architecture"), start=1)), m(11, "swap", "NodeSwapStatus"))
message("NodeSwapStatus", i64(1, "capacity", keep=True))
message("ContainerImage", rep(1, "names", "string"), i64(2, "sizeBytes"))
message("AttachedVolume", s(1, "name", keep=True), s(2, "devicePath", keep=True))
message("NodeConfigStatus", m(1, "assigned", "NodeConfigSource"), m(2, "active", "NodeConfigSource"),
        m(3, "lastKnownGood", "NodeConfigSource"), s(4, "error"))
message("NodeRuntimeHandler", s(1, "name", keep=True), m(2, "features", "NodeRuntimeHandlerFeatures"))
message("NodeRuntimeHandlerFeatures", b(1, "recursiveReadOnlyMounts", keep=True), b(2, "userNamespaces", keep=True))
message("NodeFeatures", b(1, "supplementalGroupsPolicy", keep=True))

# -- Service, Endpoints -------------------------------------------------------------------------
message("Service", m(1, "metadata", OBJECT), m(2, "spec", "ServiceSpec"), m(3, "status", "ServiceStatus"))
message("ServiceSpec",
        rep(1, "ports", "ServicePort"), mapof(2, "selector", "string"), s(3, "clusterIP"),
        rep(18, "clusterIPs", "string"), s(4, "type"), rep(5, "externalIPs", "string"), s(7, "sessionAffinity"),
        s(8, "loadBalancerIP"), rep(9, "loadBalancerSourceRanges", "string"), s(10, "externalName"),
        s(11, "externalTrafficPolicy"), i32(12, "healthCheckNodePort"), b(13, "publishNotReadyAddresses"),
        m(14, "sessionAffinityConfig", "SessionAffinityConfig"), rep(19, "ipFamilies", "string"),
        s(17, "ipFamilyPolicy", keep=True), b(20, "allocateLoadBalancerNodePorts", keep=True),
        s(21, "loadBalancerClass", keep=True), s(22, "internalTrafficPolicy", keep=True),
        s(23, "trafficDistribution", keep=True))
message("ServicePort", s(1, "name"), s(2, "protocol"), s(6, "appProtocol", keep=True), i32(3, "port", keep=True),
        t(4, "targetPort", "intstr"), i32(5, "nodePort"))
message("SessionAffinityConfig", m(1, "clientIP", "ClientIPConfig"))
message("ClientIPConfig", i32(1, "timeoutSeconds", keep=True))
message("ServiceStatus", m(1, "loadBalancer", "LoadBalancerStatus"), rep(2, "conditions", "Condition"))
message("LoadBalancerStatus", rep(1, "ingress", "LoadBalancerIngress"))
message("LoadBalancerIngress", s(1, "ip"), s(2, "hostname"), s(3, "ipMode", keep=True), rep(4, "ports", "PortStatus"))
message("PortStatus", i32(1, "port", keep=True), s(2, "protocol", keep=True), s(3, "error", keep=True))
message("Endpoints", m(1, "metadata", OBJECT), rep(2, "subsets", "EndpointSubset"))
message("EndpointSubset", rep(1, "addresses", "EndpointAddress"), rep(2, "notReadyAddresses", "EndpointAddress"),
        rep(3, "ports", "EndpointPort"))
message("EndpointAddress", s(1, "ip", keep=True), s(3, "hostname"), s(4, "nodeName", keep=True),
        m(2, "targetRef", "ObjectReference"))
message("EndpointPort", s(1, "name"), i32(2, "port", keep=True), s(3, "protocol"), s(4, "appProtocol", keep=True))

# -- Lease (coordination.k8s.io/v1) -------------------------------------------------------------
message("Lease", m(1, "metadata", OBJECT), m(2, "spec", "LeaseSpec"))
message("LeaseSpec",
        s(1, "holderIdentity", keep=True), i32(2, "leaseDurationSeconds", keep=True),
        t(3, "acquireTime", "microtime"), t(4, "renewTime", "microtime"), i32(5, "leaseTransitions", keep=True),
        s(6, "strategy", keep=True), s(7, "preferredHolder", keep=True))
