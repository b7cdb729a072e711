# loadgate for `loadgate k8s` (docs/distributed.md): the harness, the stub upstream and
# the reference gateway in one image; each shard pod runs `loadgate run --shard`.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY loadgate ./loadgate
COPY stub_upstream ./stub_upstream
COPY reference_gateway ./reference_gateway
COPY profiles ./profiles
RUN pip install --no-cache-dir . && useradd --create-home --uid 1000 loadgate
USER loadgate
WORKDIR /home/loadgate
ENTRYPOINT []
CMD ["loadgate", "--help"]
