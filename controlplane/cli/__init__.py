"""`dvp v ...`: console, VNC, start/stop/restart of virtual machines."""
