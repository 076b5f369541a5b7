# ghapp's container image. Default: the web app with a worker pool (`ghapp serve`); give it
# another command for a separate process: `ghapp serve --no-worker`, `ghapp worker`,
# `ghapp db upgrade` (manifests/ does so). Claude Code is not included: build FROM this
# image and add it, or point GHAPP_CLAUDE_BIN at it.
FROM python:3.11-slim

# git: workers clone the repositories they work on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
# The locked versions, installed the way the README's deployment section does (not editable:
# the image keeps no checkout to edit), into a virtual environment of the image's own.
ENV UV_PROJECT_ENVIRONMENT=/opt/ghapp \
    PATH=/opt/ghapp/bin:$PATH
RUN python3 -m pip install uv==0.13.9 \
    && python3 -m uv sync --locked --no-editable \
    && python3 -m pip uninstall -y uv

# Never root: a fixed uid, so Kubernetes' runAsNonRoot can check it.
RUN useradd --create-home --uid 10001 --user-group ghapp
USER 10001
WORKDIR /home/ghapp

EXPOSE 8000
CMD ["ghapp", "serve", "--host", "0.0.0.0"]
