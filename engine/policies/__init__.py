"""Dated, sourced locality parameters, the division table and the source registry."""
