"""The standalone service, for `flask --app wsgi` and `gunicorn wsgi:app`."""
from favsync import create_app

app = create_app()
