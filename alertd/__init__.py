"""alertd: watch news feeds, score articles for sanctions and arms-transfer relevance, alert subscribers."""

__version__ = "0.1.0"
