# autojoin: one image; `autojoin serve` and `autojoin worker` are two commands of it.
# The image carries no rules: mount the directory that holds yours at /rules (see README,
# "Docker and Compose"). Dependencies are installed at the versions in constraints.txt
# (scripts/lock), so a rebuild gets what was tested, as the pinned base image does.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AUTOJOIN_RULES=/rules/rules.yaml \
    AUTOJOIN_DATABASE_URL=sqlite:////data/autojoin.db

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin autojoin \
    && mkdir -p /data /rules \
    && chown autojoin /data

USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["autojoin", "serve", "--host", "0.0.0.0"]
