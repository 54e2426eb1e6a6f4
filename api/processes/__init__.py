"""The helper processes: the server, the sidecar supervisor, the writer and the monitor processes."""
