# Production image: gunicorn (behind nginx) for the web, the same image for the Celery worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SCRM_ENV=production
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
RUN SECRET_KEY=build-only ALLOWED_HOSTS=build python manage.py collectstatic --noinput
EXPOSE 8000
# Meant to run behind nginx (deploy/nginx.conf, docker-compose.yml), which buffers slow clients.
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "scrm.wsgi:application"]
