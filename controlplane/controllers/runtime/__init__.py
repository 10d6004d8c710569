"""The reconciler runtime shared by every controller: a per-reconcile state object, an
ordered chain of small handlers, one status write per cycle, and watchers that map related
objects to the keys of the objects that depend on them."""
