# gpt-oss chat: the web app with the in-process transformers engine.
# GPU: run with the NVIDIA container runtime (`docker run --gpus all ...`); the torch wheel from PyPI
# brings its own CUDA libraries, the host needs only the driver.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    GPT_OSS_CHAT_HOST=0.0.0.0 \
    GPT_OSS_CHAT_PORT=7860 \
    GPT_OSS_CHAT_DATA_DIR=/data \
    HF_HOME=/models

RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data /models /app \
    && chown user:user /data /models /app

WORKDIR /app
# The same lock as README and CI; pip and torch first (one version, the CUDA wheel here: see README).
COPY requirements.lock .
RUN python -m pip install pip==26.3 && pip install torch==2.13.0 && pip install -r requirements.lock
COPY --chown=user:user . .

USER 1000
VOLUME ["/data", "/models"]
EXPOSE 7860
# /healthz answers 200 while the server runs (also while the model loads: allow for a long first
# download) and 503 once the model failed to load. The slim image has no curl: use Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GPT_OSS_CHAT_PORT', '7860'), timeout=4)"]
CMD ["python", "app.py"]
