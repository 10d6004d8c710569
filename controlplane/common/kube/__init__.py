"""The shared client-side runtime every component uses against a Kubernetes API: a dict-based
client over the official `kubernetes` package (`client`), informers (list+watch caches), the
work queue, a controller loop, an event recorder and Lease-based leader election.

Import the modules themselves: this package imports nothing, so a process that only needs the
work queue (the API server's background loops) does not load the `kubernetes` client."""
