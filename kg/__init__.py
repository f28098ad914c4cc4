"""medcode-kg build: curated sources + ontology + ICD-10-CM -> reasoned, validated snapshot."""

__version__ = "0.1.0"
