"""Pipeline runs: plan from DVC, stages in parallel through DVC, events to MongoDB and Redis."""
