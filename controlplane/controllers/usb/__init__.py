"""NodeUSBDevice and USBDevice reconcilers (usb/nodeusb.py, usb/usbdevice.py)."""
