"""One object of each core and coordination kind that has a protobuf message, with nearly
every field its message carries set (zero values where Go keeps them), for round-trip tests
of the codec and of the server. CustomResourceDefinitions come from the bundled CRDs."""

from __future__ import annotations

from typing import Any

META = {
    "name": "x", "namespace": "ns", "uid": "5f0c", "resourceVersion": "42", "generation": 3,
    "creationTimestamp": "2024-05-06T07:08:09Z", "deletionTimestamp": "2024-05-07T00:00:00Z",
    "deletionGracePeriodSeconds": 0, "labels": {"app": "web", "empty": ""}, "annotations": {"a/b": "c"},
    "finalizers": ["kubernetes", "example.com/f"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u", "controller": True,
                         "blockOwnerDeletion": False}],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                       "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:data": {".": {}, "f:k": {}}}, "subresource": "status"}],
}
KINDS: dict[str, dict[str, Any]] = {
    "Namespace": {"metadata": META, "spec": {"finalizers": ["kubernetes"]}, "status": {
        "phase": "Terminating", "conditions": [{"type": "NamespaceDeletionContentFailure", "status": "False",
                                                "lastTransitionTime": "2024-05-06T07:08:09Z", "reason": "R",
                                                "message": "m"}]}},
    "Secret": {"metadata": META, "type": "kubernetes.io/tls", "immutable": False,
               "data": {"tls.crt": "AAECAwT/", "empty": ""}, "stringData": {"s": "plain"}},
    "ConfigMap": {"metadata": META, "data": {"k": "v", "multi": "a\nb\n"}, "binaryData": {"b": "3q2+7w=="},
                  "immutable": True},
    "ServiceAccount": {"metadata": META, "secrets": [{"kind": "Secret", "namespace": "ns", "name": "t"}],
                       "imagePullSecrets": [{"name": "registry"}], "automountServiceAccountToken": False},
    "Event": {"metadata": META, "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u",
                                                   "apiVersion": "v1", "resourceVersion": "1",
                                                   "fieldPath": "spec.containers{c}"},
              "reason": "Started", "message": "ok", "source": {"component": "kubelet", "host": "n1"},
              "firstTimestamp": "2024-05-06T07:08:09Z", "lastTimestamp": "2024-05-06T07:09:09Z", "count": 4,
              "type": "Normal", "eventTime": "2024-05-06T07:08:09.123456Z",
              "series": {"count": 2, "lastObservedTime": "2024-05-06T07:08:10.000001Z"}, "action": "Run",
              "related": {"kind": "Node", "name": "n1"}, "reportingComponent": "c", "reportingInstance": "i"},
    "Node": {"metadata": META, "spec": {
        "podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"], "providerID": "dvp://n1", "unschedulable": True,
        "taints": [{"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "2024-05-06T07:08:09Z"},
                   # the taint the node lifecycle controller would add to a cordoned node: with it in
                   # place a server running controllers leaves the sample as written
                   {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                    "timeAdded": "2024-05-06T07:08:09Z"}]},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi"}, "allocatable": {"cpu": "3500m"}, "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-05-06T07:08:09Z",
                            "lastTransitionTime": "2024-05-06T07:08:09Z", "reason": "KubeletReady", "message": "ok"}],
            "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}, {"type": "Hostname", "address": "n1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
                         "osImage": "Debian", "containerRuntimeVersion": "libvirt://9", "kubeletVersion": "v1.33",
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64",
                         "swap": {"capacity": 0}},
            "images": [{"names": ["a", "b"], "sizeBytes": 12345678901}], "volumesInUse": ["v"],
            "volumesAttached": [{"name": "v", "devicePath": "/dev/vdb"}],
            "runtimeHandlers": [{"name": "kvm", "features": {"recursiveReadOnlyMounts": False,
                                                            "userNamespaces": True}}],
            "features": {"supplementalGroupsPolicy": True}}},
    "Service": {"metadata": META, "spec": {
        "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443, "nodePort": 30443,
                   "appProtocol": "h2"}, {"port": 80, "targetPort": "http"}],
        "selector": {"app": "web"}, "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
        "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
        "allocateLoadBalancerNodePorts": False},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9", "ipMode": "VIP",
                                                 "ports": [{"port": 443, "protocol": "TCP", "error": ""}]}]},
                   "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2,
                                   "lastTransitionTime": "2024-05-06T07:08:09Z", "reason": "R", "message": ""}]}},
    "Endpoints": {"metadata": META, "subsets": [{
        "addresses": [{"ip": "192.0.2.1", "hostname": "h", "nodeName": "n1",
                       "targetRef": {"kind": "Node", "name": "n1"}}],
        "notReadyAddresses": [{"ip": "192.0.2.2"}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP", "appProtocol": "https"}]}]},
    "Lease": {"metadata": META, "spec": {"holderIdentity": "me", "leaseDurationSeconds": 0,
                                         "acquireTime": "2024-05-06T07:08:09.000000Z",
                                         "renewTime": "2024-05-06T07:08:10.250000Z", "leaseTransitions": 0,
                                         "strategy": "OldestEmulationVersion", "preferredHolder": ""}},
}
