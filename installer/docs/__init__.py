"""Documentation and example manifests shipped inside the binary, so that every message that
points at a document (`dvp docs upgrade`) and every next step (`dvp examples quickstart |
kubectl apply -f -`) works on a host that has only `/usr/local/bin/dvp`."""
