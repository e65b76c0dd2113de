# chatkit-backend container image.
#
#   docker build -t chatkit-backend .
#   docker run --read-only --tmpfs /tmp --tmpfs /app/data:uid=10001,gid=10001 \
#     -e OPENAI_API_KEY -p 8000:8000 chatkit-backend
#
# - Two stages: `build` makes a virtualenv from requirements.lock; `runtime` copies only that
#   venv onto the same base, so no compiler or build files reach the final image; the base's
#   own pip, setuptools and wheel are uninstalled there (the build fails if any is left).
# - Runs as uid/gid 10001 with a read-only root filesystem: the only writable paths are
#   /tmp and /app/data (SQLite's default ./data/chatkit.db, relative to WORKDIR /app); mount
#   them as volumes (emptyDir in the Helm chart). Set PROMETHEUS_MULTIPROC_DIR to a mounted
#   path when WORKERS > 1.
# - BASE_IMAGE is any Debian-based image with python3 (3.11-3.13) and its venv module;
#   scripts/build-image-offline builds one with debootstrap when no registry is reachable.
# - PIP_INDEX_URL / PIP_FIND_LINKS / PIP_NO_INDEX pass through to pip (a mirror, or a local
#   wheelhouse), in the build stage only.
# - Targets: `runtime` (the default, last) and `dev` (skaffold's dev profile).
# No `# syntax=` line: the classic builder and BuildKit both build this without pulling a
# frontend image.

ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ARG DUMB_INIT_VERSION=1.2.5.post1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
SHELL ["/bin/sh", "-eu", "-c"]
WORKDIR /src
RUN python3 -m venv /opt/chatkit-backend
# Dependencies first, with a stub package and an empty README, so that neither a source nor a
# README change reinstalls them.
COPY pyproject.toml requirements.lock ./
RUN mkdir service && touch service/__init__.py README.md \
    && /opt/chatkit-backend/bin/pip install --no-cache-dir -c requirements.lock . \
        "dumb-init==${DUMB_INIT_VERSION}" \
    && rm -rf service build ./*.egg-info README.md
COPY README.md ./
COPY service/ ./service/
RUN /opt/chatkit-backend/bin/pip install --no-cache-dir --no-deps --force-reinstall . \
    && /opt/chatkit-backend/bin/pip uninstall --yes setuptools wheel pip \
    && /opt/chatkit-backend/bin/chatkit-backend --version

FROM ${BASE_IMAGE} AS app
ARG APP_UID=10001
SHELL ["/bin/sh", "-eu", "-c"]
# The base's own pip, setuptools and wheel (the official image puts them in /usr/local, on
# PATH): nothing at run time needs them. Uninstalled with the base's python3 (PATH leads to the
# venv only further down), then checked: none importable, no pip/wheel/easy_install on PATH.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
            python3 -m pip uninstall --yes --no-input setuptools wheel pip; \
    fi \
    && python3 -c "import importlib.util, os, re, sys; \
left = [m for m in ('pip', 'setuptools', 'wheel', 'pkg_resources', '_distutils_hack') \
        if importlib.util.find_spec(m)]; \
left += [os.path.join(d, n) for d in os.environ['PATH'].split(os.pathsep) if os.path.isdir(d) \
         for n in os.listdir(d) if re.fullmatch(r'(pip|wheel|easy_install)[-0-9.]*', n)]; \
sys.exit('still in the image: ' + ', '.join(left) if left else 0)"
LABEL org.opencontainers.image.title="chatkit-backend" \
      org.opencontainers.image.description="Self-hostable backend for OpenAI's ChatKit UI" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid "${APP_UID}" chatkit \
    && useradd --system --uid "${APP_UID}" --gid "${APP_UID}" --home-dir /app \
        --no-create-home --shell /usr/sbin/nologin chatkit \
    && mkdir -p /app/data \
    && chown "${APP_UID}:${APP_UID}" /app/data
COPY --from=build /opt/chatkit-backend /opt/chatkit-backend
ENV PATH=/opt/chatkit-backend/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    ENVIRONMENT=production
WORKDIR /app
USER ${APP_UID}:${APP_UID}
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
STOPSIGNAL SIGTERM
# dumb-init (PID 1) forwards SIGTERM to the server only (--single-child): the server drains
# (SHUTDOWN_DRAIN_SECONDS) and stops its own workers; a second signal would cut the drain short.
ENTRYPOINT ["dumb-init", "--single-child", "--", "chatkit-backend"]
CMD ["serve"]

# skaffold's dev profile (`--target dev`): the sources where file sync writes and Hypercorn's
# reloader looks (WORKDIR /app comes first on sys.path for `hypercorn service.app:...`).
FROM app AS dev
ARG APP_UID=10001
COPY --chown=${APP_UID}:${APP_UID} service/ /app/service/
ENV ENVIRONMENT=development

# The default target, last so that a plain `docker build .` produces it.
FROM app AS runtime
