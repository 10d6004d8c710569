"""The guest test image every VM test boots (docs/guest-image.md).

A small BIOS disk built from Debian packages: the `linux-image-cloud-amd64` kernel (or the
generic one for emulated SATA/e1000 hardware), a busybox initramfs whose init reads the
NoCloud seed, takes an address by DHCP, prints `DVP-GUEST-READY hostname=<h> ip=<ip>
instance-id=<id>` on the serial console and serves it over HTTP. `ensure_image()` builds it
once and caches it; `python -m nodeimage.guest build --out DIR` does the same from a shell.
"""

from nodeimage.guest.build import FLAVOURS, GuestImage, ensure_image, export

MARKER_PREFIX = "DVP-GUEST-READY"
POWEROFF_PREFIX = "DVP-GUEST-POWEROFF"

__all__ = ["FLAVOURS", "MARKER_PREFIX", "POWEROFF_PREFIX", "GuestImage", "ensure_image", "export"]
