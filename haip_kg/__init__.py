"""haip-kg: the 2014 HAIP consensus statements (doi:10.3747/co.21.1577) as a computable knowledge graph."""

__version__ = "0.9.0"
