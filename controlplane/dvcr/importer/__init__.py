"""The importer: puts a VM image into DVCR as a containerDisk-style OCI artifact.

    source (http | registry | file | upload)
      -> checksum (of the bytes as fetched) -> gzip/xz unpacked while streaming
      -> format detected from content (qcow2, raw, iso, vmdk, vdi; anything else refused)
      -> one tar layer holding `disk/disk.<ext>` -> pushed to DVCR with config + manifest

`pipeline.import_image` is the entry point; `sources` opens each kind of source, `sink`
pushes over the registry API (or, inside DVCR, straight into its store).
"""
