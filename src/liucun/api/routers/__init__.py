"""One router per resource; :func:`liucun.api.create_app` includes them all."""
