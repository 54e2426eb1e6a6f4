"""Simulations: requests, the runner and its child process, stored outputs, populations, reform checks."""
