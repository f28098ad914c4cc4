"""The `medcode` console script: the one place that imports both `kg` (build, publish) and `server` (serve)."""
