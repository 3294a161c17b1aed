# One image for the API, the workers and beat (docker-compose.yml picks the command).
# torch comes from PyPI, where the Linux x86_64 wheel is a CUDA build: the install pulls about
# 3 GB of NVIDIA libraries even though fraudring runs on CPU (see constraints.txt).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FRAUDRING_DATA_DIR=/data

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin fraudring \
    && mkdir /data && chown fraudring:fraudring /data

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY fraudring ./fraudring
COPY world ./world
COPY graph ./graph
COPY gnn ./gnn
COPY realtime ./realtime
COPY workers ./workers
COPY api ./api
COPY bench ./bench
RUN pip install -c constraints.txt .

USER fraudring
VOLUME /data
EXPOSE 8000
CMD ["fraudring", "serve", "--host", "0.0.0.0", "--port", "8000"]
