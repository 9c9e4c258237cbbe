# Atelier on a CUDA GPU host.
#   docker build -t atelier .
#   docker run --gpus all --env-file .env -v atelier-data:/data atelier
# or, with PostgreSQL (and Redis + GPU workers), compose.yaml: docker compose --profile onebox up -d
# The image holds code only; model weights download into /data/huggingface (the volume) on first use,
# or ahead of time: docker run ... atelier atelier models pull sdxl
#
# The CUDA runtime of the base image and the CUDA build of torch go together: change both at once
# (torch's wheel index names its CUDA version, cu128 = CUDA 12.8).
ARG CUDA_VERSION=12.8.1
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ATELIER_DATABASE_URL=sqlite+aiosqlite:////data/atelier.db \
    HF_HOME=/data/huggingface

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/atelier
ENV PATH=/opt/atelier/bin:$PATH

# torch from the index matching the CUDA base, before the project, so no resolver picks another build.
RUN pip install "${TORCH_SPEC}" --index-url "${TORCH_INDEX}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY inference ./inference
COPY moderation ./moderation
COPY db ./db
# [video]: MP4 for /animate (imageio-ffmpeg's ffmpeg); [postgres]: asyncpg for compose.yaml's database.
RUN pip install ".[postgres,video]"

# Run as an unprivileged user; /data holds the SQLite database and the model cache.
RUN useradd --create-home atelier && mkdir -p /data && chown atelier /data
USER atelier
VOLUME ["/data"]
CMD ["atelier", "run"]
