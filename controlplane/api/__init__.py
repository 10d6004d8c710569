"""The virtualization.deckhouse.io API of dvp: the CRDs (YAML under ``crds/``, loaded by
:mod:`controlplane.api.crds`) and the typed constants around them
(:mod:`controlplane.api.v1alpha2`).

A regular package (not a namespace one) so that :mod:`importlib.resources` can read the CRD
files as package data in every install mode: source checkout, editable install, wheel and
the PyInstaller binary.
"""
