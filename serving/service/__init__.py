"""The BentoML service: thin endpoints (app), the TensorFlow explainer, request schemas, upload readers, limits,
the request guard, OpenAPI fixes, and a launcher that starts and stops a real `bentoml serve`."""
