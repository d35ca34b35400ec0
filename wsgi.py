"""The standalone service: `flask --app wsgi`, `gunicorn wsgi:app`, `celery -A wsgi:celery worker`."""
from favsync import create_app

app = create_app()
# Set when FAVSYNC_CELERY_BROKER_URL is: the workers that deliver the outbox.
celery = app.extensions["favsync"].celery
