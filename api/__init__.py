"""HTTP service (FastAPI). See the service issue; the evaluation core is ``engine``."""
