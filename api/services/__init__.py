"""Use cases, one module each, called by the JSON routes (api/routes) and the pages (web/).
They take typed dependencies (api.infra.Infra, a Principal, api.cases.Cases) and raise
api.errors.ApiError subclasses for the caller to answer."""
