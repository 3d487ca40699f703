"""Job-Queue: a PostgreSQL job queue with a Kubernetes autoscaler."""

__version__ = "0.1.0"
