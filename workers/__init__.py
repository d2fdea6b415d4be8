"""arq workers: every DVC operation runs here, never in the API process."""
