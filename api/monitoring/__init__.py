"""Dynamic monitoring: the monitoring service, event ordering, its repository, turns and replay."""
