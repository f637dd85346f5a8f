"""The HTTP layer shared by every feature: route declarations (parameters, schemas, auth) that
also produce the OpenAPI document, the error hierarchy and the middleware."""
