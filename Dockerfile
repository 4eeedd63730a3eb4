# The standalone gateway in a container.
#
#   docker build -t asgi-llm-gateway .
#   docker run --rm -p 8000:8000 asgi-llm-gateway                      # echo provider, no keys needed
#   docker run --rm -p 8000:8000 --stop-timeout 35 \
#       -v "$PWD/gateway.toml:/etc/asgi-llm-gateway/gateway.toml:ro" \
#       -e ASGI_LLM_GATEWAY_CONFIG=/etc/asgi-llm-gateway/gateway.toml \
#       -e OPENAI_API_KEY -e GATEWAY_KEY_ALICE \
#       asgi-llm-gateway --workers 4
#
# Arguments after the image name go to the runner (`--workers`, `--graceful-timeout`, `--no-access-log`,
# `--forwarded-allow-ips`, `--config`); see docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package build needs, so that edits elsewhere in the repository keep this layer cached.
COPY pyproject.toml README.md /tmp/src/
COPY asgi_llm_gateway /tmp/src/asgi_llm_gateway
RUN pip install "/tmp/src[server]" && rm -rf /tmp/src

# A numeric, unprivileged user: Kubernetes' runAsNonRoot can verify it.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001:10001

EXPOSE 8000
# The runner answers /healthz without touching any upstream. (Kubernetes ignores this; use its probes.)
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# SIGTERM starts the graceful shutdown: in-flight streams get --graceful-timeout seconds (default 30), so give
# the container longer than that before it is killed (docker run --stop-timeout, Compose stop_grace_period,
# Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["asgi-llm-gateway", "--host", "0.0.0.0", "--port", "8000"]
