"""Authorization of the API server: Kubernetes RBAC (`rbac.py`, over the four
rbac.authorization.k8s.io/v1 kinds of `kinds.py`), the node authorizer (`node.py`), the
default roles and bindings written at start (`defaults.py`), escalation prevention
(`escalation.py`), the request middleware that turns a request into attributes and answers
403 as kube-apiserver does (`middleware.py`), and the audit log (`audit.py`)."""
