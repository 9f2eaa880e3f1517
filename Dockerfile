# streamreg with Dask and S3: one image for the scheduler, the workers and the job service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamreg ./streamreg
RUN pip install --no-cache-dir ".[s3]"
COPY data ./data
COPY deploy ./deploy
# 8786: Dask scheduler; 8787: its dashboard.
EXPOSE 8786 8787
CMD ["streamreg", "demo", "--data", "/app/data"]
