"""Server-side apply and field ownership (managedFields), after kube-apiserver's
structured-merge-diff: `shapes` says how each part of a kind merges (granular or atomic maps,
atomic/set/map lists), `fieldsets` turns objects into sets of field paths and back to the
`FieldsV1` format, `merge` merges an applied configuration into the live object and removes
what an applier stopped applying, `managed` keeps the per-manager entries and finds
conflicts. `service.py` calls `managed` on every write."""
