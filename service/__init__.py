"""chatkit-backend: a self-hostable backend for OpenAI's ChatKit UI."""

__version__ = "0.1.0"
