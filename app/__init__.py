"""The API process: settings, lifespan, services and repositories. It never imports dvc."""
