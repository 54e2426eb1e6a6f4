# jiuzhu service image. Build: docker build -t jiuzhu .
# The image carries the rule and policy files it evaluates with (JIUZHU_HOME=/app); to run
# with a bureau's own files, mount them over /app/rules and /app/policies.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JIUZHU_HOME=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
RUN pip install --no-cache-dir .
COPY rules ./rules
COPY policies ./policies
COPY examples ./examples

RUN useradd --system --uid 10001 jiuzhu && jiuzhu rules check
USER jiuzhu
ENTRYPOINT ["jiuzhu"]
CMD ["--help"]
