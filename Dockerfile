# jiuzhu service image. Build: docker build -t jiuzhu .
# Run:   docker run -p 8000:8000 -v jiuzhu-data:/data jiuzhu
#        (first start prints an admin key once: docker logs <container>)
# With PostgreSQL: -e DATABASE_URL=postgresql://user:pass@host:5432/jiuzhu
# The image carries the rule and policy files it evaluates with (JIUZHU_HOME=/app); to run
# with a bureau's own files, mount them over /app/rules and /app/policies.
# Reform simulations read populations from /data/populations (JIUZHU_POPULATIONS_DIR): mount or copy them there.
# Environment variables: see docs/service.md, "Service configuration".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JIUZHU_HOME=/app \
    JIUZHU_DATA_DIR=/data \
    JIUZHU_HOST=0.0.0.0 \
    JIUZHU_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
# durable-rules (dynamic monitoring) is published as source only: its C engine is compiled here.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir . \
 && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
COPY rules ./rules
COPY policies ./policies
COPY examples ./examples

RUN useradd --system --uid 10001 jiuzhu && mkdir -p /data && chown jiuzhu /data && jiuzhu rules check
USER jiuzhu
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"JIUZHU_PORT\"]}/readyz', timeout=4)"
ENTRYPOINT ["jiuzhu"]
CMD ["serve"]
