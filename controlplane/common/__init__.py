"""Shared foundations: version, PKI, kubeconfig, logging. Imports nothing else of dvp."""
