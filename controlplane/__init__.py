"""The platform's control plane: API server, CRDs, controllers, DVCR, node handler, `dvp v`."""
