# One server instance: `python -m server`, configured by environment variables
# (server/config.py). docker-compose.yml runs three of these behind nginx.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data

# tshark: bulk PCAP ingest (field extraction); its wireshark-common brings sharkd, which
# dissects single packets (pcap:packet).
# The debconf preseed answers wireshark-common's "may non-root users capture?"
# prompt (no: we only read files) so the install is non-interactive.
RUN echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
COPY . .
# The source stays in /app (the working directory, so first on sys.path for
# `python -m server`): data files such as the web console under server/web are
# served from there even where the wheel does not carry them.
RUN pip install . \
    && mkdir -p "$DATA_DIR" \
    && chown -R app:app "$DATA_DIR"

USER app

EXPOSE 8000

# /health is liveness only (no store or Redis round trip); python:slim has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]

CMD ["python", "-m", "server"]
