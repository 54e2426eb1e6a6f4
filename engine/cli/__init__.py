"""The `jiuzhu` command line: the root group, its shared options and the batch commands."""
