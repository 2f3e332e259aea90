"""The integration API, for tills, web shops and apps (REST), and webhooks out."""


def is_api_path(path: str) -> bool:
    """Whether a request's path is the API's (its errors are problems, its bodies JSON):
    loyalty_site.urls mounts the API under /api/."""
    return path.startswith("/api/")
