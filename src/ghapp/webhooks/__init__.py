"""GitHub webhook ingress: verification, storage, normalisation and dispatch."""
