# syntax=docker/dockerfile:1
# One image for every Youthlink process. The default command serves the API; docker-compose.yml
# runs the same image as `youthlink migrate`, `youthlink worker` and `youthlink beat`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    YOUTHLINK_DATA_DIR=/var/lib/youthlink

# The app runs unprivileged; the only folder it may write is the data folder (Celery beat's schedule).
RUN useradd --system --create-home --uid 10001 --user-group youthlink \
    && mkdir -p /var/lib/youthlink \
    && chown youthlink:youthlink /var/lib/youthlink

WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the package itself, without the dev/test extras. README* is a wildcard so a missing README is no error.
COPY pyproject.toml README* ./
COPY youthlink ./youthlink
RUN pip install --no-deps . \
    && rm -rf /src

# Run from the data folder, not the source tree: the installed package is the one imported.
WORKDIR /var/lib/youthlink
USER youthlink

EXPOSE 8000
CMD ["uvicorn", "youthlink.api.app:app", "--host", "0.0.0.0", "--port", "8000"]
