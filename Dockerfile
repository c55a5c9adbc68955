# The coffeeshop image: gunicorn serves the web app; the same image runs the Temporal worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 10001 app
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Settings refuse to load without a secret when DEBUG is off; this one only serves collectstatic.
RUN DEBUG=false SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

USER app
EXPOSE 8081
# gunicorn runs no system checks of its own; refuse to serve a misconfigured site.
# With PROMETHEUS_MULTIPROC_DIR set (compose sets it on web), gunicorn's processes share their
# metrics through that directory, which must exist and start empty; the check runs without it,
# so that its own process leaves no metrics there (tests/test_image_command.py runs this line).
# A request line up to 8190 bytes (gunicorn's most; its default is 4094): a batchGet of 100 ids,
# each its own parameter, is about 5000.
CMD ["sh", "-c", "if [ -n \"$PROMETHEUS_MULTIPROC_DIR\" ]; then rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\"; fi && env -u PROMETHEUS_MULTIPROC_DIR python manage.py check --deploy --fail-level ERROR && exec gunicorn coffeeshop.wsgi --bind 0.0.0.0:8081 --workers 2 --threads 4 --limit-request-line 8190 --access-logfile -"]
