"""DVCR: the OCI registry that stores VM images, and the importer/uploader that fills it."""
