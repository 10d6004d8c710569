"""Images built by the project itself: the guest test image (`nodeimage.guest`) and, for the
`dkp` target, the OCI images and manifests of the platform's components."""
