"""The embedded target: `dvp server` runs the API server, DVCR, the controllers and (for a
one-host install) the node handler in one process, started as named steps."""
