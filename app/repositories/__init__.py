"""Storage: repositories take their database in the constructor and return domain objects."""
