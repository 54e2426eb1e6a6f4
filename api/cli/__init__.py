"""The service's commands that join `jiuzhu` (serve, keys, monitor, alerts)."""
