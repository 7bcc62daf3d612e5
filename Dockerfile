# The pmo-ledger image: one image for every role (api, ingest, relay, consume ...),
# chosen by the command, as docker-compose.yml does.
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PMO_DATA_DIR=/data

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p domain projections api consumers ingest storage pmo \
    && pip install . && pip uninstall -y pmo-ledger
COPY domain ./domain
COPY projections ./projections
COPY api ./api
COPY consumers ./consumers
COPY ingest ./ingest
COPY storage ./storage
COPY pmo ./pmo
RUN pip install --no-deps . && useradd --create-home pmo && mkdir -p /data \
    && chown pmo /data
USER pmo
VOLUME /data
EXPOSE 8000
ENTRYPOINT ["pmo"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
