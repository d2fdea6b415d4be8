# syntax=docker/dockerfile:1
# Production image: the API by default (CMD below); the arq worker is the same
# image with the command `python -m workers` (see compose.yaml).

# The stage shell DVC starts for every stage command (workers/execution/stage_shell.c), compiled with the flags
# workers/execution/shell.py uses (COMPILE_FLAGS): the final image has no C compiler, so STAGE_SHELL_BINARY names it.
FROM python:3.11-slim AS stage-shell
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY workers/execution/stage_shell.c /src/stage_shell.c
RUN gcc -O2 -Wall -Werror -o /stage-shell /src/stage_shell.c

# GraphiQL's browser assets (pinned npm packages), served by the API itself: no CDN needed at run time.
FROM node:22-slim AS graphiql-assets
COPY .ci/graphiql-assets.sh /graphiql-assets.sh
RUN bash /graphiql-assets.sh /graphiql-assets && test -f /graphiql-assets/graphiql.min.js

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DVC_NO_ANALYTICS=1 \
    WORKSPACE_ROOT=/workspaces \
    PROJECT_ENVIRONMENTS_ROOT=/environments \
    STAGE_SHELL_BINARY=/usr/local/bin/stage-shell \
    GRAPHIQL_ASSETS_DIR=/app/graphiql-assets \
    PATH=/opt/service/bin:$PATH

# git: DVC workspaces are git repositories. bubblewrap: every stage command runs in a sandbox (workers/sandbox/,
# /usr/bin/bwrap), whose PID 1 is the stage shell itself (it would also drop a root worker's stages to
# STAGE_SANDBOX_UID; a worker running as `app`, as here, needs none: bwrap takes a user namespace of its own user).
# slirp4netns, iproute2 and util-linux's nsenter: the user-mode network of stages whose project allows one
# (workers/sandbox/network.py).
# See docs/hardening.md ("The stage sandbox") for what the container must be allowed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap slirp4netns iproute2 util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && test -x /usr/bin/bwrap && test -x /usr/bin/slirp4netns && test -x /usr/bin/ip && test -x /usr/bin/nsenter

# Unprivileged user that owns the workspaces and the projects' Python environments (workers/environments/).
# Both are created (and chowned) before VOLUME so that a fresh named volume inherits the ownership.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir -p /workspaces /environments \
    && chown app:app /workspaces /environments

WORKDIR /app

# The service's packages go into a virtualenv of their own, outside /usr: a stage's sandbox shows /usr read-only, and
# the image's /usr/local/bin/python3 (the base interpreter of every project environment) must import none of them.
RUN python -m venv /opt/service

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes) ...
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY --from=stage-shell /stage-shell /usr/local/bin/stage-shell
COPY --from=graphiql-assets /graphiql-assets ./graphiql-assets

# ... then the project itself (no dev extras).
COPY app ./app
COPY schema ./schema
COPY workers ./workers
RUN pip install --no-deps .

VOLUME ["/workspaces", "/environments"]
USER app
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# --proxy-headers trusts X-Forwarded-* only from FORWARDED_ALLOW_IPS (uvicorn's
# env default, 127.0.0.1): set it to the reverse proxy's address when there is one.
# Graceful shutdown is bounded (open GraphQL subscriptions would otherwise hold
# it) to stay below `docker stop`'s default 10 s grace period.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--timeout-graceful-shutdown", "8", "--ws-per-message-deflate", "false"]
