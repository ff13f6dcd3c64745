# gpt-oss chat: the web app with the in-process transformers engine.
# GPU: run with the NVIDIA container runtime (`docker run --gpus all ...`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GPT_OSS_CHAT_HOST=0.0.0.0 \
    GPT_OSS_CHAT_PORT=7860 \
    GPT_OSS_CHAT_DATA_DIR=/data \
    HF_HOME=/models

RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data /models /app \
    && chown user:user /data /models /app

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=user:user . .

USER user
VOLUME ["/data", "/models"]
EXPOSE 7860
CMD ["python", "app.py"]
