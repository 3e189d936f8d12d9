"""The MedMatch REST and WebSocket service (FastAPI): `medmatch_api.main:app`."""
