"""One router per resource; `medmatch_api.main` mounts them under /api/v1."""
