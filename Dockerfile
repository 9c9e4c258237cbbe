# Atelier on a CUDA GPU host.
#   docker build -t atelier .
#   docker run --gpus all --env-file .env -v atelier-data:/data atelier
# The image holds code only; model weights download into /data/huggingface (the volume) on first use.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ATELIER_DATABASE_URL=sqlite+aiosqlite:////data/atelier.db \
    HF_HOME=/data/huggingface

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/atelier
ENV PATH=/opt/atelier/bin:$PATH

# torch from the CUDA 12.4 index before the project, so no resolver picks another build.
RUN pip install torch --index-url https://download.pytorch.org/whl/cu124

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY inference ./inference
COPY moderation ./moderation
COPY db ./db
RUN pip install ".[postgres]"

# Run as an unprivileged user; /data holds the SQLite database.
RUN useradd --create-home atelier && mkdir -p /data && chown atelier /data
USER atelier
VOLUME ["/data"]
CMD ["atelier", "run"]
