"""Domain types shared by the API and the workers: plain dataclasses, no GraphQL, no DVC."""
