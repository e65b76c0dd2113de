"""Uploaded files: where their bytes live (local disk or GCS), who may reach them, and how."""
