"""State of the running system: the engine heartbeat."""

from django.db import models


class EngineHeartbeat(models.Model):
    """One row per engine process, refreshed every few seconds; /health reads it."""

    engine_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField()
    broker = models.CharField(max_length=16)
    state = models.CharField(max_length=24, default="starting")
    details = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    last_beat = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "engine_heartbeats"
        ordering = ["-last_beat"]

    def __str__(self) -> str:
        return f"{self.engine_id} {self.state} @ {self.last_beat:%H:%M:%S}"
