"""The columnar executor: rules evaluated over whole columns of households at once."""
