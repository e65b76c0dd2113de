"""The reference backend: the openai-chatkit quickstart on FastAPI + uvicorn."""
