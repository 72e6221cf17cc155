# The kafkabridge service image: the Django dashboard, the Celery worker and the bridge share it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY manage.py pyproject.toml README.md LICENSE ./
COPY kafkabridge ./kafkabridge
RUN pip install --no-cache-dir --no-deps .
COPY dashboard ./dashboard
# The admin's static files, compressed, for WhiteNoise to serve from the WSGI app (docker-compose.yml's web).
RUN python manage.py collectstatic --noinput -v0
RUN useradd --create-home kafkabridge
USER kafkabridge
EXPOSE 8000
CMD ["python", "manage.py", "runbridge"]
