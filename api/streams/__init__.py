"""Monitoring events through Redis streams (``jiuzhu monitor publish / consume / lag``)."""
